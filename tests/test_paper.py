"""Stage ``paper``: figures from hand-made metric files, skips, citations, determinism.

The hand-made files are minimal instances of the records of the metrics contract
(husai/records.py): the paper reads nothing else."""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
from pathlib import Path

import matplotlib
import pytest
from typer.testing import CliRunner

from husai.records import FILES, record_for, validate
from paper.build import build
from paper.figures import FIGURES
from stages.cli import app
from tests.paper_check import check_report

runner = CliRunner()
CONFIGS = {"topk": "topk", "batchtopk": "batchtopk", "standard": "standard"}
SEEDS = (42, 123, 456)


def stats(mean: float, half: float = 0.02, n_pairs: int | None = 3) -> dict:
    """A statistic over seed pairs: the husai.records.Stat record."""
    return {
        "mean": mean,
        "std": half / 2,
        "ci": [mean - half, mean + half],
        "n_seeds": 3,
        "n_pairs": n_pairs,
    }


def vstats(mean: float, half: float = 0.02) -> dict:
    """A statistic over per-seed values (``n_pairs`` null)."""
    return stats(mean, half, n_pairs=None)


def ratio(value: float, half: float = 0.05) -> dict:
    return {
        "ratio": value,
        "ci": [value - half, value + half],
        "difference": 0.1,
        "difference_ci": [0.05, 0.15],
        "paired": False,
    }


def fake_live(pw: float, shared: float, subspace: float | None = 0.8, iso: float = 0.3) -> dict:
    """``live`` of a configuration: husai.records.LiveStability (count-matched baselines)."""
    sub = None if subspace is None else stats(subspace, 0.01)
    return {
        "seeds": list(SEEDS),
        "live_pwmcc": stats(pw),
        "live_hungarian_mcc": stats(pw - 0.05),
        "live_shared_fraction": stats(shared),
        "isotropic_live_pwmcc": stats(iso, 0.01),
        "isotropic_live_hungarian_mcc": stats(iso - 0.05, 0.01),
        "isotropic_live_shared_fraction": stats(0.01, 0.01),
        "subspace_live_pwmcc": sub,
        "subspace_live_hungarian_mcc": None if subspace is None else stats(subspace - 0.05, 0.01),
        "subspace_live_shared_fraction": None if subspace is None else stats(0.5, 0.05),
        "data_live_pwmcc": stats(0.85, 0.01),
        "data_live_hungarian_mcc": stats(0.8, 0.01),
        "data_live_shared_fraction": stats(0.6, 0.05),
        "live_pwmcc_ratio_to_isotropic": ratio(pw / iso),
        "live_pwmcc_ratio_to_subspace": None if subspace is None else ratio(pw / subspace),
        "live_pwmcc_ratio_to_data": ratio(pw / 0.85),
        "subspace_rank": None if subspace is None else 6,
        "n_live": vstats(40.0, 2.0),
        "n_live_per_seed": [39, 40, 41],
        "distinct_live": vstats(38.0, 2.0),
        "distinct_live_per_seed": [37, 38, 39],
    }


def fake_planes(i: int) -> dict:
    """``planes`` of a configuration on a domain with planes: husai.records.PlaneStability."""
    plane = {"frequency": 16, "variable": "sum", "share": 0.7}
    return {
        "seeds": list(SEEDS),
        "min_share": 0.9,
        "min_concentration": 0.6,
        "planes": [plane, {"frequency": 55, "variable": "sum", "share": 0.2}],
        "coverage": vstats(0.9 - 0.1 * i),
        "assigned_fraction": vstats(0.6),
        "covered_planes": vstats(1.0, 0.0),
        "evenness": vstats(0.5),
        "arc_fraction": vstats(0.7),
        "assignment_agreement": vstats(0.95),
        "subspace_coverage": vstats(0.05, 0.01),
        "subspace_assigned_fraction": vstats(0.01, 0.01),
        "plane_agreement": stats(0.95),
        "subspace_plane_agreement": stats(0.1, 0.05),
        "partition_ami": stats(0.4),
        "subspace_partition_ami": stats(0.5, 0.05),
        "rotation_live_pwmcc": stats(0.7 + 0.05 * i),
        "rotation_live_hungarian_mcc": stats(0.6),
        "rotation_live_shared_fraction": stats(0.01, 0.01),
        "per_plane": [
            {
                **plane,
                "coverage": vstats(0.9),
                "n_atoms": vstats(20.0, 2.0),
                "covers": 1.0,
                "agreement": stats(0.95),
            }
        ],
        "per_seed": {str(s): {"coverage": 0.9, "evenness": None} for s in SEEDS},
    }


def fake_neurons(i: int) -> dict:
    """``neurons`` of a configuration on a transformer hook: husai.records.NeuronAlignment."""
    return {
        "seeds": list(SEEDS),
        "threshold": 0.9,
        "alignment": vstats(0.5 + 0.1 * i),
        "aligned_fraction": vstats(0.2 + 0.1 * i),
        "neurons_found": vstats(30.0, 3.0),
        "shared_neurons": stats(0.4),
        "subspace_alignment": vstats(0.3, 0.01),
        "subspace_aligned_fraction": vstats(0.0, 0.0),
        "per_seed": {str(s): {"alignment": 0.5} for s in SEEDS},
    }


def fake_stability(i: int) -> dict:
    """One configuration of ``metrics/stability/modular.json`` (stages/stability.py docstring)."""
    pw = 0.5 + 0.1 * i
    return {
        "architecture": list(CONFIGS.values())[i],
        "d_sae": 64,
        "d_in": 32,
        "seeds": list(SEEDS),
        "pwmcc": stats(pw),
        "hungarian_mcc": stats(0.4 + 0.1 * i),
        "shared_fraction": stats(0.02 + 0.05 * i),
        "random_pwmcc": stats(0.31, 0.002),
        "random_hungarian_mcc": stats(0.2, 0.002),
        "random_shared_fraction": stats(0.0, 0.0),
        "random_pwmcc_expected": 0.309,
        "untrained_pwmcc": stats(0.33, 0.002),
        "untrained_hungarian_mcc": stats(0.21, 0.002),
        "untrained_shared_fraction": stats(0.0, 0.0),
        "pwmcc_ratio_to_random": ratio(pw / 0.31),
        "pwmcc_ratio_to_untrained": ratio(pw / 0.33),
        "subspace_overlap": {
            "4": {"trained": stats(0.8), "untrained_mean": 0.1, "random_expectation": 0.125}
        },
        "pair_pwmcc": [[None, pw, pw], [pw, None, pw], [pw, pw, None]],
        "subspace_rank": 6,
        "subspace_random_pwmcc": stats(0.8, 0.003),
        "subspace_random_hungarian_mcc": stats(0.7, 0.003),
        "subspace_random_shared_fraction": stats(1.0, 0.0),
        "pwmcc_ratio_to_subspace": ratio(pw / 0.8, 0.02),
        "live": fake_live(pw + 0.05, 0.03 + 0.05 * i),
    }


def fake_control(arch: str, d_sae: int, pw: float, shared: float, live: dict, truth: dict) -> dict:
    """One configuration of ``metrics/stability/<control>.json`` (husai.records.DomainStability)."""
    entry = fake_stability(0)
    entry.update(
        architecture=arch,
        d_sae=d_sae,
        pwmcc=stats(pw),
        shared_fraction=stats(shared),
        random_shared_fraction=stats(0.04, 0.01),
        pwmcc_ratio_to_random=ratio(pw / 0.31),
        live=live,
        ground_truth=truth,
    )
    return entry


def features_truth(mcc: float, recovered: float) -> dict:
    return {
        "kind": "features",
        "mcc": vstats(mcc),
        "recovered_fraction": vstats(recovered),
        "uniqueness": vstats(0.96),
        "mcc_all_atoms": vstats(mcc - 0.01),
        "per_seed": {str(s): {"mcc": mcc} for s in SEEDS},
    }


def saelens_eval(mcc: float, difference: float = 5e-8) -> dict:
    return {
        "mcc": vstats(mcc),
        "uniqueness": vstats(0.95),
        "f1": vstats(0.685),
        "precision": vstats(0.7),
        "recall": vstats(0.69),
        "max_mcc_difference": difference,
        "per_seed": {str(s): {"mcc": mcc} for s in SEEDS},
    }


def fake_synthetic() -> dict:
    """``metrics/stability/synthetic.json``: the positive control (planted features)."""
    out = {}
    for i, arch in enumerate(("topk", "batchtopk")):
        entry = fake_control(
            arch,
            32,
            0.95 - 0.02 * i,
            0.875 - 0.05 * i,
            fake_live(0.955 - 0.02 * i, 0.89, subspace=0.56, iso=0.55),
            features_truth(0.957 - 0.02 * i, 0.906 - 0.05 * i),
        )
        entry["saelens_eval"] = saelens_eval(0.947 - 0.02 * i)
        out[arch] = entry
    return out


def fake_circles() -> dict:
    """``metrics/stability/circles.json``: the negative control (round circles, no features)."""
    truth = {
        "kind": "planes",
        "in_plane_fraction": vstats(0.03),
        "planes_covered": vstats(0.33, 0.1),
        "per_seed": {str(s): {"in_plane_fraction": 0.03} for s in SEEDS},
    }
    return {
        name: fake_control(
            "topk", d, 0.9, 0.2 + 0.05 * i, fake_live(0.93, 0.28, subspace=0.89, iso=0.52), truth
        )
        for i, (name, d) in enumerate((("topk", 1024), ("topk-d64", 64)))
    }


def map_cell(arch: str, s: int, w: float, i: int) -> dict:
    """One cell of ``metrics/identifiability.json`` (IdentifiabilitySummaryCell)."""
    good = s == 1
    return {
        "name": f"{arch}-s{s}-w{w:g}-s1",
        "architecture": arch,
        "superposition": s,
        "width": w,
        "sparsity": 1.0,
        "n_features": 8 * s,
        "d_sae": int(8 * s * w),
        "level": 2.0,
        "explained_variance": 0.8,
        "l0": 2.0,
        "frac_alive": 1.0,
        "converged": i != 3,
        "pwmcc": 0.95 - 0.3 * (not good) - 0.01 * i,
        "shared_fraction": 0.9 if good else 0.3,
        "live_pwmcc": 0.96 - 0.3 * (not good) - 0.01 * i,
        "live_hungarian_mcc": 0.95 - 0.3 * (not good),
        "mcc": 0.97 - 0.4 * (not good) - 0.005 * i,
        "recovered_fraction": 1.0 if good else 0.4,
    }


def predicts(rho: float, ci: list[float] | None, threshold: float | None) -> dict:
    return {
        "spearman_rho": rho,
        "p_value": 0.01,
        "spearman_ci": ci,
        "n_cells": 8,
        "level": 0.9,
        "threshold": threshold,
        "cells_above": 0 if threshold is None else 4,
    }


def fake_identifiability() -> dict:
    cells = [
        map_cell(a, s, w, i)
        for i, (a, s, w) in enumerate(
            (a, s, w) for a in ("topk", "standard") for s in (1, 4) for w in (1.0, 2.0)
        )
    ]
    head = predicts(0.71, [0.2, 1.0], 0.9)
    return {
        "n_cells": len(cells),
        "n_not_converged": sum(not c["converged"] for c in cells),
        "recovered_level": 0.9,
        "headline": {"stability": "live_pwmcc", "recovery": "mcc", **head},
        "predicts": {
            k: {"mcc": head, "recovered_fraction": head}
            for k in ("pwmcc", "shared_fraction", "live_pwmcc", "live_hungarian_mcc")
        },
        "identifiable_cells": [c for c in cells if c["superposition"] == 1 and c["width"] == 1],
        "cells": cells,
    }


def sweep_row(arch: str, d: int, knob: str, level: float, i: int) -> dict:
    """One row of ``metrics/sweep.json`` (stages/sweep_summary.py docstring)."""
    short = {"k": "k", "l1_coefficient": "l1c", "l0_coefficient": "l0c"}[knob]
    row = {
        "config": f"{arch}-d{d}-{short}{level:g}",
        "architecture": arch,
        "d_sae": d,
        "knob": knob,
        "level": level,
        "skipped": False,
    }
    if knob == "k" and level > d:
        return {**row, "skipped": True, "reason": f"k = {level} with d_sae = {d}"}
    rnd = 0.2 + 0.002 * d
    pw = 0.5 + 0.2 * (8 / d) + 0.01 * i
    sub = 0.55 + 0.003 * d
    l0 = (
        float(level)
        if knob == "k"
        else (6.0 + 0.01 * level if knob == "l0_coefficient" else 8.0 / level)
    )
    row.update(
        {
            "steps": 100,
            "converged": None,
            "reconstructs": True,
            "l0": l0,
            "explained_variance": 0.6 + 0.02 * i,
            "dead_fraction": 0.1,
            "pwmcc": pw,
            "pwmcc_ci": [pw - 0.02, pw + 0.02],
            "random_pwmcc": rnd,
            "untrained_pwmcc": rnd + 0.01,
            "ratio": pw / rnd,
            "ratio_ci": [pw / rnd - 0.1, pw / rnd + 0.1],
            "ratio_untrained": pw / (rnd + 0.01),
            "ratio_untrained_ci": [1.5, 2.5],
            "hungarian_mcc": pw - 0.05,
            "shared_fraction": 0.1 + 0.01 * i,
            "coverage": 0.5 if d == 16 else 0.0,
            "pure_latent_fraction": 0.1,
            "decoder_alignment": 0.5,
            "random_decoder_alignment": 0.3,
            "stable": True,
            "subspace_random_pwmcc": sub,
            "ratio_subspace": pw / sub,
            "ratio_subspace_ci": [pw / sub - 0.05, pw / sub + 0.05],
            "above_subspace": pw / sub - 0.05 > 1,
            "lr": 0.001,
            "epochs_max": 40,
            # live atoms beside the shift null: topk at d_sae 16 clear above it, the rest at it
            "live_pwmcc": pw,
            "live_pwmcc_ci": [pw - 0.01, pw + 0.01],
            "shift_null_live_pwmcc": pw - (0.05 if (arch, d) == ("topk", 16) else 0.0),
            "shift_null_live_pwmcc_ci": [pw - 0.06, pw - 0.04]
            if (arch, d) == ("topk", 16)
            else [pw - 0.01, pw + 0.01],
            "subspace_live_pwmcc": sub,
            "live_excess": 0.05 if (arch, d) == ("topk", 16) else 0.0,
            "above_shift_null": (arch, d) == ("topk", 16),
            "n_live": 0.8 * d,
            "lengths": [
                {
                    "epochs": 2,
                    "explained_variance": 0.5,
                    "l0": l0,
                    "pwmcc": pw + 0.1,
                    "ratio": (pw + 0.1) / rnd,
                    "live_pwmcc": pw + 0.1,
                    "shift_null_live_pwmcc": pw + 0.09,
                    "above_shift_null": False,
                }
            ],
        }
    )
    return row


def fake_sweep() -> dict:
    rows = []
    for arch, knob, levels in (
        ("topk", "k", (4, 8, 16)),
        ("standard", "l1_coefficient", (1, 3)),
        ("jumprelu", "l0_coefficient", (1, 10)),
    ):
        for d in (8, 16):
            for level in levels:
                rows.append(sweep_row(arch, d, knob, level, len(rows)))
    trained = [r for r in rows if not r["skipped"]]
    by = {}
    for d in (8, 16):
        mine = [r for r in trained if r["d_sae"] == d]
        top = max(mine, key=lambda r: r["ratio"])
        by[str(d)] = {
            "best_config": top["config"],
            "best_ratio": top["ratio"],
            "best_ratio_ci": top["ratio_ci"],
            "best_pwmcc": top["pwmcc"],
            "random_pwmcc": top["random_pwmcc"],
            "n_configs": len(mine),
            "n_stable": len(mine),
            "n_not_reconstructing": 0,
        }
    pick = {r["config"]: r for r in trained}
    matched = [
        {
            "d_sae": 8,
            "target_l0": 4.0,
            "best_architecture": "topk",
            "architectures": {
                a: {
                    k: pick[c][k]
                    for k in ("config", "l0", "ratio", "ratio_ci", "pwmcc", "explained_variance")
                }
                for a, c in (("topk", "topk-d8-k4"), ("standard", "standard-d8-l1c3"))
            },
        }
    ]
    return {
        "n_configs": len(trained),
        "n_saes": 3 * len(trained),
        "n_skipped": len(rows) - len(trained),
        "n_not_reconstructing": 0,
        "n_not_converged": 0,
        "min_explained_variance": 0.5,
        "seeds": list(SEEDS),
        "epochs": 2,
        "rows": rows,
        "best_ratio": sorted(trained, key=lambda r: -r["ratio"])[:5],
        "by_d_sae": by,
        "matched_l0": matched,
        "architectures_at_matched_l0": {
            "standard": {"n_comparisons": 1, "wins": 0, "mean_ratio": 2.0},
            "topk": {"n_comparisons": 1, "wins": 1, "mean_ratio": 2.5},
        },
        "goldilocks": {
            "zone": False,
            "peak_d_sae": 8,
            "stable_d_sae": [8, 16],
            "answer": "No Goldilocks zone above d_sae 8.",
        },
        "lr": [0.001],
        "lengths": [2],
        "n_above_shift_null": sum(r["above_shift_null"] for r in trained),
        "goldilocks_live": {
            "zone": False,
            "sizes_above": [16],
            "by_d_sae": {
                str(d): {
                    "n_configs": sum(r["d_sae"] == d for r in trained),
                    "n_above_shift_null": sum(
                        r["d_sae"] == d and r["above_shift_null"] for r in trained
                    ),
                    "best_config": max(
                        (r for r in trained if r["d_sae"] == d),
                        key=lambda r: (r["live_excess"], r["config"]),
                    )["config"],
                    "best_excess": max(r["live_excess"] for r in trained if r["d_sae"] == d),
                }
                for d in (8, 16)
            },
            "answer": "Live atoms beat the shift null at d_sae 16, including an end of the grid.",
        },
        "by_length": [
            {
                "epochs": 2,
                "n_configs": len(trained),
                "n_above_shift_null": 0,
                "explained_variance": 0.5,
                "pwmcc": 0.8,
                "live_pwmcc": 0.8,
                "shift_null_live_pwmcc": 0.79,
            },
            {
                "epochs": None,
                "n_configs": len(trained),
                "n_above_shift_null": 2,
                "explained_variance": 0.7,
                "pwmcc": 0.7,
                "live_pwmcc": 0.7,
                "shift_null_live_pwmcc": 0.69,
            },
        ],
        "by_lr": {
            "0.001": {
                "n_configs": len(trained),
                "n_above_shift_null": 2,
                "live_pwmcc": 0.7,
                "shift_null_live_pwmcc": 0.69,
                "min_epochs": 40,
                "max_epochs": 40,
            }
        },
    }


def fake_dynamics() -> dict:
    steps = (0, 1, 2, 4, 8, 16, 32, 64)
    configs = {}
    for i, name in enumerate(("topk", "standard")):
        cps = []
        for j, s in enumerate(steps):
            st = {
                "pwmcc": vstats(0.3 + s / 200 + 0.02 * i),
                "hungarian_mcc": vstats(0.28 + s / 250),
                "shared_fraction": vstats(0.2 * math.exp(-((j - 4) ** 2) / 4)),
                "subspace_overlap_r4": vstats(0.5),
            }
            cps.append(
                {
                    "step": s,
                    "stability": st,
                    "ratio_to_isotropic": {"pwmcc": (0.3 + s / 200) / 0.3},
                    "explained_variance": vstats(0.1 * j),
                    "l0": vstats(4.0),
                    "frac_alive": vstats(1.0 - 0.08 * j),
                    "cos_to_final": vstats(0.5),
                    "settled_fraction": 1.0 if s == steps[-1] else 0.01 * j,
                    "match_agreement_live": 1.0 if s == steps[-1] else 0.05 * j,
                }
            )
        settle = {
            "n_latents": 40,
            "median": 64,
            "quantiles": {"0.5": 64},
            "mean_log2_step": 5.9,
            "fraction_settled_by_step": {str(s): (1.0 if s == 64 else 0.02) for s in steps},
        }
        configs[name] = {
            "architecture": name,
            "hyperparameters": {},
            "seeds": list(SEEDS),
            "d_sae": 64,
            "d_in": 32,
            "total_steps": 64,
            "checkpoint_steps": list(steps),
            "random": {
                "isotropic": {"pwmcc": vstats(0.31), "shared_fraction": vstats(0.0, 0)},
                "subspace_random": {"4": 0.125},
            },
            "checkpoints": cps,
            "settle": {"all": settle, "live": settle, "shared": settle, "not_shared_live": settle},
            "settle_per_pair": {"all": settle, "live": settle, "shared": settle},
            "final_live": 0.4,
            "final_shared_with_majority": 0.05,
        }
    return {"threshold": 0.7, "configs": configs}


def gram(effective_rank: float) -> dict:
    return {
        "effective_rank": effective_rank,
        "participation_ratio": effective_rank / 2,
        "numerical_rank": 32,
        "top_eigenvalue": 0.1,
        "self_max_cos": 0.3,
    }


def fake_geometry() -> dict:
    ranks = ("4", "8", "16")
    configs = {}
    for i, name in enumerate(CONFIGS):
        configs[name] = {
            "architecture": name,
            "seeds": list(SEEDS),
            "d_sae": 64,
            "d_in": 32,
            "live_only": True,
            "n_live": vstats(40.0, 2.0),
            "n_atoms_analysed": [40, 41, 39],
            "n_reference_atoms": 40,
            "pwmcc": vstats(0.8),
            "gram": {
                "summary": {
                    "effective_rank": vstats(9.0),
                    "participation_ratio": vstats(4.0),
                    "numerical_rank": vstats(20.0),
                    "top_eigenvalue": vstats(0.3),
                    "self_max_cos": vstats(0.9),
                },
                "seed_distance": stats(0.04 + 0.01 * i, 0.01),
                "distance_to_isotropic": vstats(0.7),
                "distance_to_data_sample": vstats(0.4),
                "isotropic": gram(30.0),
                "isotropic_pair_distance": 0.01,
                "data_sample": gram(10.0),
                "data_sample_pair_distance": 0.01,
            },
            "subspace": {
                "overlap": {r: vstats(0.9 - 0.01 * int(r)) for r in ranks},
                "random_expectation": {r: int(r) / 32 for r in ranks},
                "isotropic_overlap": {r: int(r) / 32 + 0.01 for r in ranks},
                "data_sample_overlap": {r: 0.97 for r in ranks},
                "activation_pca_overlap": {r: vstats(0.9) for r in ranks},
            },
            "groups": {
                "fraction_grouped": vstats(0.99),
                "sizes": {"3": vstats(10.0)},
                "per_frequency": {},
                "all": {
                    "group_overlap": vstats(0.9),
                    "atom_in_span": vstats(0.85),
                    "atom_match": vstats(0.67),
                    "null_overlap": vstats(0.8),
                    "random_overlap": 0.0625,
                },
                "data_sample": {
                    "group_overlap": 0.9,
                    "atom_in_span": 0.97,
                    "atom_match": 0.95,
                    "null_overlap": 0.92,
                },
            },
        }
    return {
        "activations": {
            "n": 961,
            "d_in": 32,
            "effective_rank": 8.5,
            "participation_ratio": 3.6,
            "dims_for_variance": {"0.9": 4, "0.95": 5, "0.99": 7},
            "variance_share_top": [0.4, 0.3],
        },
        "ground_truth": {
            "key_frequencies": [3, 7],
            "subspace_dims": {"3": 4, "7": 4},
            "variance_share_in_span": 0.99,
            "group_min_share": 0.5,
        },
        "configs": configs,
    }


def fake_predictors() -> dict:
    configs = {}
    for i, name in enumerate(CONFIGS):
        auc = {
            "firing_frequency": {**vstats(0.5 + 0.1 * i, 0.05), "pooled": 0.55},
            "purity": {**vstats(0.8 - 0.35 * i, 0.05), "pooled": 0.75},
            "decoder_norm": {
                "mean": 0.5,
                "std": 0.0,
                "ci": [0.5, 0.5],
                "n_seeds": 3,
                "n_pairs": None,
                "pooled": 0.5,
            },
            "encoder_norm": {**vstats(0.85, 0.05), "pooled": 0.8},
        }
        configs[name] = {
            "architecture": name,
            "seeds": list(SEEDS),
            "d_sae": 64,
            "min_other_seeds": 2,
            "n_latents": 192,
            "n_live": 120,
            "n_shared": 8 + 20 * i,
            "shared_count_histogram": {"0": 100},
            "per_seed": {},
            "auc": auc,
            "n_shared_with_any": 50,
            "auc_shared_with_any": {"purity": 0.7},
            "means": {},
            "shared_rate_by_decile": {},
        }
    return {
        "rule": {"threshold": 0.7, "shared_with": "majority", "absolute": True},
        "configs": configs,
    }


def fake_metrics() -> dict[str, object]:
    """Metric files shaped like the stages' outputs (the schemas in their docstrings)."""
    curve = "epoch,train_loss,test_loss,train_accuracy,test_accuracy\n" + "".join(
        f"{e},{3.4 / (1 + e)},{3.4 / (1 + max(e - 200, 0))},{min(1.0, e / 100)},"
        f"{min(1.0, max(e - 150, 0) / 100)}\n"
        for e in range(0, 510, 10)
    )
    spectrum = (
        "frequency,embedding_share,activation_share,untrained_activation_share,key\n"
        + "".join(
            f"{k},{0.3 if k in (3, 7) else 0.01},{0.4 if k in (3, 7) else 0.01},0.06,"
            f"{int(k in (3, 7))}\n"
            for k in range(1, 16)
        )
    )
    saes = {
        "activations": {
            "domain": "modular",
            "hook": "h",
            "position": -1,
            "p": 31,
            "n": 961,
            "d_in": 32,
        },
        "saes": {},
    }
    for i, (name, arch) in enumerate(CONFIGS.items()):
        for j, seed in enumerate(SEEDS):
            saes["saes"][f"{name}/seed{seed}"] = {
                "config": name,
                "architecture": arch,
                "seed": seed,
                "hyperparameters": {
                    "architecture": arch,
                    "d_sae": 64,
                    "k": 4,
                    "l1_coefficient": 3.0,
                },
                "metrics": {
                    "explained_variance": 0.8 + 0.01 * i + 0.003 * j,
                    "l0": 4.0 + j,
                    "frac_alive": 0.7,
                    "mse": 1.0,
                    "cossim": 0.9,
                    "l2_ratio": 0.95,
                },
                "training": {
                    "steps": 100,
                    "activation_scale": 0.1,
                    "final_epoch_loss": 0.5,
                    "final_epoch_mse": 0.3,
                    "final_epoch_l0": 4.0,
                },
            }
    stability = {
        name: fake_stability(i) | {"planes": fake_planes(i), "neurons": fake_neurons(i)}
        for i, name in enumerate(CONFIGS)
    }
    recovery = {
        name: {
            "architecture": name,
            "d_sae": 64,
            "seeds": list(SEEDS),
            "key_frequencies": [3, 7],
            "pure_latent_fraction": stats(0.3 + 0.1 * i),
            "key_frequency_coverage": stats(0.5 + 0.25 * i),
            "decoder_alignment": stats(0.6 + 0.1 * i),
            "random_decoder_alignment": stats(0.3, 0.01),
            "per_seed": {},
        }
        for i, name in enumerate(CONFIGS)
    }
    return {
        "metrics/transformer.json": {
            "train_loss": 1e-4,
            "train_accuracy": 1.0,
            "test_loss": 0.01,
            "test_accuracy": 0.9995,
            "grokking_epoch": 247,
            "epochs": 500,
            "grokked": True,
            "fast_forward_max_abs_error": 1e-5,
        },
        "metrics/curves/transformer.csv": curve,
        "metrics/fourier.json": {
            "key_frequencies": [3, 7],
            "embedding_key_frequency_share": 0.6,
            "activation_hook": "blocks.0.hook_resid_post",
            "activation_position": -1,
            "pure_neurons_per_key_frequency": {"3": 10, "7": 12},
            "pure_neurons_off_key_frequencies": 0,
            "activation_key_frequency_variance_share": 0.8,
            "untrained_activation_key_frequency_variance_share": 0.13,
            "neuron_purity_fraction": 0.7,
            "activation_effective_rank": 12.0,
            "untrained_activation_effective_rank": 17.0,
            "activation_dim": 32,
        },
        "metrics/curves/fourier_spectrum.csv": spectrum,
        "metrics/saes/modular.json": saes,
        "metrics/stability/modular.json": stability,
        "metrics/recovery.json": recovery,
        "metrics/sweep.json": fake_sweep(),
        "metrics/dynamics.json": fake_dynamics(),
        "metrics/geometry.json": fake_geometry(),
        "metrics/predictors.json": fake_predictors(),
        "metrics/stability/synthetic.json": fake_synthetic(),
        "metrics/stability/circles.json": fake_circles(),
        "metrics/identifiability.json": fake_identifiability(),
        "params.yaml": "task:\n  p: 31\n  frac_train: 0.7\n  seed: 1\n",
    }


def write_repo(root: Path, files: dict[str, object]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content, indent=1))
    return root


@pytest.fixture
def full_repo(tmp_path: Path) -> Path:
    return write_repo(tmp_path / "repo", fake_metrics())


def run_paper(repo: Path, figures: str = "paper/figures"):
    return runner.invoke(
        app,
        [
            "paper",
            "--root",
            str(repo),
            "--figures",
            str(repo / figures),
            "--report",
            str(repo / "paper/report.md"),
            "--sources",
            str(repo / "paper/report_sources.json"),
        ],
    )


def test_every_figure_renders_from_complete_metrics(full_repo: Path) -> None:
    result = run_paper(full_repo)
    assert result.exit_code == 0, result.output
    for spec in FIGURES:
        png = full_repo / "paper/figures" / f"{spec.name}.png"
        pdf = full_repo / "paper/figures" / f"{spec.name}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", spec.name
        assert pdf.read_bytes()[:5] == b"%PDF-", spec.name
        assert png.stat().st_size > 10_000 and pdf.stat().st_size > 5_000
    report = (full_repo / "paper/report.md").read_text()
    assert "skipped" not in report and "Pending" not in report
    assert check_report(full_repo) > 50


def test_rendering_is_byte_identical_and_ignores_user_rcparams(full_repo: Path) -> None:
    first = build(full_repo)
    with matplotlib.rc_context({"lines.linewidth": 7, "font.size": 20, "figure.dpi": 50}):
        second = build(full_repo)
    assert first.figures.keys() == second.figures.keys() and len(first.figures) == 2 * len(FIGURES)
    for name, data in first.figures.items():
        assert data == second.figures[name], name
    assert first.report == second.report and first.sources_json() == second.sources_json()
    for name, data in first.figures.items():  # no timestamps or version strings
        assert b"CreationDate" not in data and b"Matplotlib" not in data, name


def test_missing_metric_files_skip_their_figures_and_say_so(tmp_path: Path) -> None:
    files = fake_metrics()
    for name in ("metrics/stability/modular.json", "metrics/sweep.json", "metrics/dynamics.json"):
        del files[name]
    repo = write_repo(tmp_path / "repo", files)
    result = run_paper(repo)
    assert result.exit_code == 0, result.output
    made = {p.stem for p in (repo / "paper/figures").iterdir()}
    assert made == {
        "fig1_grokking",
        "fig2_fourier",
        "fig8a_geometry",
        "fig8b_predictors",
        "fig9_controls",
    }
    report = (repo / "paper/report.md").read_text()
    for fig in ("fig3_baselines", "fig5_tradeoff", "fig6_recovery"):
        assert f"`{fig}` | skipped: `metrics/stability/modular.json not there yet`" in report
    assert "`fig4_stability_heatmaps` | skipped: `metrics/sweep.json not there yet`" in report
    assert "*Pending: `metrics/stability/modular.json is not there yet`.*" in report
    assert "skipped fig3_baselines" in result.output
    check_report(repo)


def test_no_metrics_at_all_still_writes_a_report(tmp_path: Path) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    result = run_paper(repo)
    assert result.exit_code == 0, result.output
    assert list((repo / "paper/figures").iterdir()) == []
    report = (repo / "paper/report.md").read_text()
    assert report.count("| skipped:") == len(FIGURES)
    assert check_report(repo) == 0


def test_every_hand_made_file_follows_its_record() -> None:
    """The fakes are minimal files of each record of the contract (husai/records.py)."""
    files = fake_metrics()
    assert set(FILES) <= set(files)
    for name, record in FILES.items():
        validate(files[name], record, name)
    for name in ("metrics/stability/synthetic.json", "metrics/stability/circles.json"):
        validate(files[name], record_for(name), name)  # the per-domain files


def test_a_file_without_an_optional_field_skips_what_needs_it(tmp_path: Path) -> None:
    files = copy.deepcopy(fake_metrics())
    for entry in files["metrics/stability/modular.json"].values():
        del entry["subspace_random_pwmcc"]  # NotRequired: written with the data subspace only
    del files["metrics/sweep.json"]
    repo = write_repo(tmp_path / "repo", files)
    out = build(repo)
    assert "fig3_baselines" in out.rendered and "fig1_grokking" in out.rendered
    plain = re.sub(r"<!--n\d+-->", "", out.report)  # the data-subspace column is n/a
    assert (
        "| `topk` | 64 | 0.500 [0.480, 0.520] | 0.310 | 0.330 | n/a | 1.61 [1.56, 1.66] "
        "| 0.62 [0.60, 0.65] |" in plain
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: f["metrics/stability/modular.json"]["topk"].pop("pwmcc"),
            "metrics/stability/modular.json: topk/pwmcc: missing (a DomainStability has",
        ),
        (
            lambda f: f["metrics/stability/modular.json"]["batchtopk"]["pwmcc"].update(mean="0.5"),
            "metrics/stability/modular.json: batchtopk/pwmcc/mean: expected number | null, got a string",
        ),
        (
            lambda f: f["metrics/dynamics.json"]["configs"]["topk"]["checkpoints"][2]["stability"][
                "pwmcc"
            ].update(ci_low=0.1, ci_high=0.2),
            "metrics/dynamics.json: configs/topk/checkpoints/2/stability/pwmcc/ci_low: unexpected "
            "key (a Stat has mean, std, ci, n_seeds, n_pairs)",
        ),
        (
            lambda f: f["metrics/sweep.json"]["rows"][0].pop("ratio_ci"),
            "metrics/sweep.json: rows/0/ratio_ci: missing (a SweepRow has",
        ),
        (
            lambda f: f["metrics/saes/modular.json"]["saes"]["topk/seed42"].update(seed="42"),
            "metrics/saes/modular.json: saes/topk/seed42/seed: expected int",
        ),
    ],
)
def test_a_metric_file_off_its_record_is_a_one_line_error_naming_the_json_path(
    tmp_path: Path, change, message: str
) -> None:
    files = copy.deepcopy(fake_metrics())
    change(files)
    repo = write_repo(tmp_path / "repo", files)
    result = run_paper(repo)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "husai/records.py" in lines[0]
    assert not (repo / "paper").exists()


def test_stale_figures_are_removed(full_repo: Path) -> None:
    assert run_paper(full_repo).exit_code == 0
    (full_repo / "metrics/dynamics.json").unlink()
    assert run_paper(full_repo).exit_code == 0
    assert not (full_repo / "paper/figures/fig7_dynamics.png").exists()


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        (
            "metrics/stability/modular.json",
            "{not json",
            "metrics/stability/modular.json is not valid JSON",
        ),
        (
            "metrics/curves/transformer.csv",
            "epoch,train_loss\n1,abc\n",
            "metrics/curves/transformer.csv line 2: train_loss = 'abc' is not a number",
        ),
    ],
)
def test_unreadable_metric_file_is_a_one_line_error_and_writes_nothing(
    tmp_path: Path, file: str, content: str, message: str
) -> None:
    files = fake_metrics()
    files[file] = content
    repo = write_repo(tmp_path / "repo", files)
    result = run_paper(repo)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (repo / "paper").exists()


def test_report_checker_catches_a_wrong_or_uncited_number(full_repo: Path) -> None:
    assert run_paper(full_repo).exit_code == 0
    report = full_repo / "paper/report.md"
    good = report.read_text()
    cites = json.loads((full_repo / "paper/report_sources.json").read_text())["citations"]
    c = next(c for c in cites if c["kind"] == "value" and c["format"] == ".4f")
    report.write_text(good.replace(f"{c['text']}<!--n{c['id']}-->", f"0.1234<!--n{c['id']}-->"))
    with pytest.raises(AssertionError):
        check_report(full_repo)
    report.write_text(good + "\nAn uncited 0.42 here.\n")
    with pytest.raises(AssertionError, match="uncited"):
        check_report(full_repo)
    data = json.loads((full_repo / "metrics/fourier.json").read_text())
    data["neuron_purity_fraction"] = 0.5  # the file changes, the report does not
    report.write_text(good)
    (full_repo / "metrics/fourier.json").write_text(json.dumps(data))
    with pytest.raises(AssertionError, match=r"neuron_purity|fourier"):
        check_report(full_repo)
    shutil.rmtree(full_repo / "paper")


def test_report_states_the_data_subspace_baseline_and_the_measured_answers(full_repo: Path) -> None:
    assert run_paper(full_repo).exit_code == 0
    report = (full_repo / "paper/report.md").read_text()
    plain = re.sub(r"<!--n\d+-->", "", report)
    # baseline table: isotropic, untrained and data-subspace columns, both ratios
    assert (
        "random in data subspace | trained / isotropic [95% CI] | trained / data subspace" in plain
    )
    assert (
        "| `topk` | 64 | 0.500 [0.480, 0.520] | 0.310 | 0.330 | 0.800 | 1.61 [1.56, 1.66] "
        "| 0.62 [0.60, 0.65] |" in plain
    )
    assert "Every baseline configuration is **below** it" in plain
    # sweep: no Goldilocks zone, counts against the data subspace, JumpReLU's flat L0
    assert "**No Goldilocks zone.**" in plain
    assert "falls with every step up in size" in plain
    assert "configurations are above it with their CI" in plain
    assert "JumpReLU's L0 barely responds to its L0 coefficient" in plain
    assert "| d_sae | target L0 | standard | topk | best |" in plain
    # dynamics, geometry, predictors
    assert "the shared fraction peaks early and then falls" in plain
    assert "have their final best matches by step 32" in plain
    assert "the data-sample reference gives group overlap 0.900" in plain
    assert "predictive (CI above chance): " in plain
    assert "The decoder norm is uninformative by construction" in plain
    assert "*Pending" not in plain
    check_report(full_repo)


def test_figures_and_report_without_the_data_subspace_fields(tmp_path: Path) -> None:
    """stability.json written before the data-subspace baseline existed still renders."""
    files = copy.deepcopy(fake_metrics())
    for entry in files["metrics/stability/modular.json"].values():
        for key in [
            k
            for k in entry
            if "subspace_random" in k or k.endswith("to_subspace") or k == "subspace_rank"
        ]:
            del entry[key]
    for row in files["metrics/sweep.json"]["rows"] + files["metrics/sweep.json"]["best_ratio"]:
        for key in (
            "subspace_random_pwmcc",
            "ratio_subspace",
            "ratio_subspace_ci",
            "above_subspace",
        ):
            row.pop(key, None)
    repo = write_repo(tmp_path / "repo", files)
    out = build(repo)
    assert {"fig3_baselines", "fig4_stability_heatmaps", "fig5_tradeoff"} <= set(out.rendered)
    assert "No data-subspace baseline in stability.json" in out.report
    assert run_paper(repo).exit_code == 0
    check_report(repo)


def test_a_sweep_with_every_configuration_skipped_skips_its_figure(tmp_path: Path) -> None:
    files = copy.deepcopy(fake_metrics())
    sweep = files["metrics/sweep.json"]
    sweep["rows"] = [r for r in sweep["rows"] if r["skipped"]]
    repo = write_repo(tmp_path / "repo", files)
    out = build(repo)
    assert out.skipped["fig4_stability_heatmaps"] == (
        "metrics/sweep.json: no trained configuration in rows"
    )
    assert "fig5_tradeoff" in out.rendered  # the baseline SAEs alone
    assert run_paper(repo).exit_code == 0
    check_report(repo)


def test_dynamics_and_predictors_with_null_cis_still_render(tmp_path: Path) -> None:
    """Two seeds: the stages write "ci": null; figures draw no error bars."""
    files = copy.deepcopy(fake_metrics())

    def null_ci(node):
        if isinstance(node, dict):
            if "ci" in node and "n_seeds" in node:  # a Stat
                node["ci"] = None
            for v in node.values():
                null_ci(v)
        elif isinstance(node, list):
            for v in node:
                null_ci(v)

    for name in ("metrics/dynamics.json", "metrics/predictors.json", "metrics/geometry.json"):
        null_ci(files[name])
    repo = write_repo(tmp_path / "repo", files)
    out = build(repo)
    assert {"fig7_dynamics", "fig8a_geometry", "fig8b_predictors"} <= set(out.rendered)
    assert run_paper(repo).exit_code == 0
    check_report(repo)


def test_controls_figure_needs_the_map_and_draws_the_domains_it_finds(tmp_path: Path) -> None:
    files = copy.deepcopy(fake_metrics())
    del files["metrics/identifiability.json"]
    out = build(write_repo(tmp_path / "none", files))
    assert out.skipped["fig9_controls"] == "metrics/identifiability.json not there yet"
    assert "*Pending: `metrics/identifiability.json is not there yet`.*" in out.report
    files = copy.deepcopy(fake_metrics())
    for name in (
        "metrics/stability/synthetic.json",
        "metrics/stability/circles.json",
        "metrics/stability/modular.json",
    ):
        del files[name]
    files["metrics/identifiability.json"]["headline"]["threshold"] = None
    repo = write_repo(tmp_path / "map", files)
    first, second = build(repo), build(repo)
    assert "fig9_controls" in first.rendered  # the map alone, no threshold line
    assert first.figures["fig9_controls.png"] == second.figures["fig9_controls.png"]
    assert run_paper(repo).exit_code == 0
    check_report(repo)
