"""Stage ``identifiability_summary``: does cross-seed stability predict recovery?

Reads every row of the map (``metrics/identifiability/<arch>-s<superposition>.json``,
stage ``identifiability``) and writes ``metrics/identifiability.json``
(:class:`husai.records.IdentifiabilityMetrics`) and ``metrics/curves/identifiability.csv``
(one row per cell, for ``dvc plots``).

Across cells, each stability measure (husai.idmap.STABILITY_MEASURES: one needs no ground
truth) is set against each recovery measure (husai.idmap.RECOVERY_MEASURES):
Spearman's rank correlation with a 95% bootstrap CI resampling cells, and the
stability level from which every cell recovers at least ``identifiability.recovered_level``
(husai.groundtruth.stability_predicts_recovery). The headline pairs live PWMCC (measurable
without ground truth) with the share of planted features recovered at |cos| >= 0.9 (what
a practitioner means by "found the features"; the ground-truth MCC, SAELens's, matches
only min(live atoms, features) pairs, so a narrow dictionary can score high on it while
missing half the features: it is reported in ``predicts``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from husai.records import IdentifiabilityMetrics, IdentifiabilityRow
from stages._artifacts import read_json
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_csv, write_json

HEADLINE = ("live_pwmcc", "recovered_fraction")
COLUMNS = [
    "architecture",
    "superposition",
    "width",
    "sparsity",
    "n_features",
    "d_sae",
    "level",
    "explained_variance",
    "l0",
    "frac_alive",
    "converged",
    "pwmcc",
    "shared_fraction",
    "live_pwmcc",
    "live_hungarian_mcc",
    "mcc",
    "recovered_fraction",
]


@stage("identifiability_summary")
def main(
    params: Path = PARAMS_OPTION,
    rows: Path = typer.Option(Path("metrics/identifiability"), help="Folder of the map's rows."),
    out: Path = typer.Option(Path("metrics/identifiability.json"), help="Summary JSON."),
    curve: Path = typer.Option(Path("metrics/curves/identifiability.csv"), help="Per-cell CSV."),
) -> None:
    """Gather the identifiability map and test stability as a predictor of recovery."""
    from husai.errors import HusaiError
    from husai.groundtruth import stability_predicts_recovery
    from husai.idmap import RECOVERY_MEASURES, STABILITY_MEASURES, cell_row
    from husai.records import validate
    from stages.identifiability import row_name

    prm = load_params(params)
    idp = prm.identifiability
    if idp is None:
        raise HusaiError("identifiability: missing from params.yaml")
    setup(prm)
    cells = []
    for arch in idp.architectures:
        for sup in idp.superposition:
            path = rows / f"{row_name(arch, sup)}.json"
            doc = read_json(path)
            validate(doc, IdentifiabilityRow, str(path))
            for name, cell in doc.items():
                scalars = cell_row(cell)
                m = cell["metrics"]
                cells.append(
                    {
                        "name": f"{row_name(arch, sup)}-{name}",
                        **{k: cell[k] for k in COLUMNS[:7]},
                        "explained_variance": m["explained_variance"],
                        "l0": m["l0"],
                        "frac_alive": m["frac_alive"],
                        "converged": all(cell["training"]["converged"]),
                        **scalars,
                    }
                )
    boot = {"n_boot": prm.analysis.n_boot, "seed": prm.analysis.boot_seed}
    predicts = {
        s: {
            r: stability_predicts_recovery(
                [c[s] for c in cells], [c[r] for c in cells], level=idp.recovered_level, **boot
            )
            for r in RECOVERY_MEASURES
        }
        for s in STABILITY_MEASURES
    }
    identifiable = [
        c for c in cells if c["superposition"] == 1 and c["width"] == 1 and c["sparsity"] == 1
    ]
    result = {
        "n_cells": len(cells),
        "n_not_converged": sum(not c["converged"] for c in cells),
        "recovered_level": idp.recovered_level,
        "headline": {"stability": HEADLINE[0], "recovery": HEADLINE[1]}
        | predicts[HEADLINE[0]][HEADLINE[1]],
        "predicts": predicts,
        "identifiable_cells": identifiable,
        "cells": cells,
    }
    write_json(out, result, IdentifiabilityMetrics)
    write_csv(
        curve, COLUMNS, ([int(c[k]) if k == "converged" else c[k] for k in COLUMNS] for c in cells)
    )
    h = result["headline"]
    ci = h["spearman_ci"]
    console.print(
        f"identifiability: {len(cells)} cells ({result['n_not_converged']} not converged); "
        f"{h['stability']} vs {h['recovery']}: Spearman {h['spearman_rho']:.2f}"
        + ("" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]")
        + (
            f"; every cell with {h['stability']} >= {h['threshold']:.3f} has {h['recovery']} >= "
            f"{idp.recovered_level:g} ({h['cells_above']} cells)"
            if h["threshold"] is not None
            else f"; no stability level guarantees {h['recovery']} >= {idp.recovered_level:g}"
        )
        + f" -> {out}"
    )
