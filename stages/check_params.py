"""``husai check-params``: validate params.yaml before `dvc repro` parses dvc.yaml.

DVC reads params.yaml itself to expand the sweep's matrix, so an empty or broken file
fails inside DVC with DVC's message before any stage runs. ``make reproduce`` runs this
first, so such a file gets the same one-line error the stages give. (Inside the pipeline,
stage ``data`` tracks the whole file and validates every section.)
"""

from __future__ import annotations

from pathlib import Path

from stages._common import PARAMS_OPTION, console, load_params, stage


@stage("check-params")
def main(params: Path = PARAMS_OPTION) -> None:
    """Validate every section of params.yaml (one-line error naming the bad key)."""
    prm = load_params(params)
    n = sum(len(prm.sae_configs(d)) for d in prm.sae_domains())
    console.print(f"check-params: {params} is valid ({n} SAE configurations)")
