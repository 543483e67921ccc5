"""What the analysis stages share: options from params, checkpoints checked against
params, the ground truth of the activations, and the Phase 1 table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from husai.config import Params, SAEParams
from husai.errors import HusaiError
from stages._artifacts import Activations, load_saes


def analysis_options(prm: Params, hungarian: bool = True):
    """:class:`husai.analysis.AnalysisOptions` from params ``analysis`` and ``fourier``."""
    from husai.analysis import AnalysisOptions

    a = prm.analysis
    return AnalysisOptions(
        ranks=tuple(a.ranks),
        shared_threshold=a.shared_threshold,
        hungarian=hungarian,
        n_boot=a.n_boot,
        boot_seed=a.boot_seed,
        purity_threshold=prm.fourier.purity_threshold,
        subspace_variance=a.subspace_variance,
    )


def subspace_basis(x, options):
    """Orthonormal basis of the span holding ``options.subspace_variance`` of the
    activations' variance (the data-subspace baseline), or None when disabled."""
    from husai.baselines import principal_basis

    if options.subspace_variance is None:
        return None
    return principal_basis(x, options.subspace_variance)


def ground_truth(acts: Activations):
    """The :class:`husai.fourier.GroundTruth` stored in the activation dataset."""
    from husai.fourier import GroundTruth

    return GroundTruth(
        directions=acts.gt_directions,
        frequency=acts.gt_frequency,
        u=acts.gt_u,
        v=acts.gt_v,
        energy_share=acts.gt_energy_share,
    )


def load_config_saes(folder: Path, name: str, hp: SAEParams, d_in: int):
    """The checkpoints of configuration ``name``, checked against its params (a stale
    ``models/saes/modular`` from other params is an error, not a silent mismatch)."""
    sae = load_saes(folder, d_in)
    if sae.seeds != tuple(hp.seeds):
        raise HusaiError(
            f"{folder}: checkpoints have seeds {list(sae.seeds)} but params "
            f"saes.{name} lists {list(hp.seeds)} (run `dvc repro saes`)"
        )
    if sae.config.architecture != hp.architecture or sae.config.d_sae != hp.d_sae:
        raise HusaiError(
            f"{folder}: checkpoints are {sae.config.architecture} with d_sae "
            f"{sae.config.d_sae} but params saes.{name} asks for {hp.architecture} "
            f"with d_sae {hp.d_sae} (run `dvc repro saes`)"
        )
    if len(sae.seeds) < 2:
        raise HusaiError(f"saes.{name}: stability needs at least 2 seeds, got {list(sae.seeds)}")
    return sae


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def phase1_rows(saes_metrics: dict, stability: dict, recovery: dict) -> list[dict[str, Any]]:
    """One row per configuration: architecture, mean L0 / EV / dead share over seeds
    (from metrics/saes/modular.json), PWMCC, random PWMCC, their ratio, the data-subspace
    baseline and its ratio (None when absent), shared fraction and key-frequency coverage."""
    rows = []
    for name, st in stability.items():
        entries = [e for e in saes_metrics["saes"].values() if e["config"] == name]
        if not entries:
            raise HusaiError(f"metrics/saes/modular.json has no SAE of configuration {name!r}")

        def mean(key: str, entries: list = entries) -> float:
            return sum(e["metrics"][key] for e in entries) / len(entries)

        shared = st["shared_fraction"]
        rows.append(
            {
                "config": name,
                "architecture": st["architecture"],
                "l0": mean("l0"),
                "explained_variance": mean("explained_variance"),
                "dead_fraction": 1.0 - mean("frac_alive"),
                "pwmcc": st["pwmcc"]["mean"],
                "random_pwmcc": st["random_pwmcc"]["mean"],
                "ratio": st["pwmcc_ratio_to_random"]["ratio"],
                "ratio_ci": st["pwmcc_ratio_to_random"]["ci"],
                "shared_fraction": None if shared is None else shared["mean"],
                "subspace_pwmcc": (st.get("subspace_random_pwmcc") or {}).get("mean"),
                "subspace_ratio": (st.get("pwmcc_ratio_to_subspace") or {}).get("ratio"),
                "coverage": recovery.get(name, {}).get("key_frequency_coverage", {}).get("mean"),
            }
        )
    return rows


def phase1_table(rows: list[dict[str, Any]]) -> Table:
    """The rich "Phase 1" table of :func:`phase1_rows`."""
    table = Table(
        "config",
        "architecture",
        "L0",
        "EV",
        "dead %",
        "PWMCC",
        "random PWMCC",
        "ratio [95% CI]",
        "subspace PWMCC",
        "ratio",
        "shared",
        "coverage",
        title="Phase 1: baseline SAEs (random = isotropic in R^d_in; subspace = "
        "random in the activations' principal span)",
        box=None,
    )
    for r in rows:
        ci = r["ratio_ci"]
        ratio = _fmt(r["ratio"], ".2f") + ("" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]")
        table.add_row(
            r["config"],
            r["architecture"],
            _fmt(r["l0"], ".1f"),
            _fmt(r["explained_variance"], ".3f"),
            _fmt(100 * r["dead_fraction"], ".1f"),
            _fmt(r["pwmcc"], ".3f"),
            _fmt(r["random_pwmcc"], ".3f"),
            ratio,
            _fmt(r.get("subspace_pwmcc"), ".3f"),
            _fmt(r.get("subspace_ratio"), ".2f"),
            _fmt(r["shared_fraction"], ".3f"),
            _fmt(r["coverage"], ".2f"),
        )
    return table
