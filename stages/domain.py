"""Stage ``domain@<name>``: a control domain's data, ``data/domains/<name>.safetensors``.

``synthetic`` (planted features, drawn with ``sae_lens.synthetic``) and ``circles``
(points on round circles in orthogonal planes): husai/domains.py. The file holds the SAE
training data ``x`` and the ground truth (tensors ``truth.<name>``); it is seeded by the
domain's params and byte-identical on rerun.
"""

from __future__ import annotations

from pathlib import Path

import typer

from stages._artifacts import domain_path, save_domain
from stages._common import PARAMS_OPTION, console, load_params, setup, stage


@stage("domain")
def main(
    name: str = typer.Option(..., "--name", help="Control domain: a key of params domains."),
    params: Path = PARAMS_OPTION,
    out: Path | None = typer.Option(
        None, help="Dataset to write [data/domains/<name>.safetensors]."
    ),
) -> None:
    """Generate a control domain's data and ground truth."""
    from husai.domains import circles_domain, synthetic_domain

    prm = load_params(params)
    spec = prm.domain_spec(name)
    setup(prm)
    make = {"synthetic": synthetic_domain, "circles": circles_domain}[name]
    data = make(spec)
    out = domain_path(name) if out is None else out
    save_domain(out, data)
    truth = ", ".join(f"{k} {list(v.shape)}" for k, v in data.truth.items())
    extra = "".join(f", {k} {v:.3g}" for k, v in data.meta.items() if isinstance(v, float))
    console.print(f"domain {name}: x {list(data.x.shape)}; ground truth {truth}{extra} -> {out}")
