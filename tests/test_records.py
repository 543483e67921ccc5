"""The metrics contract (husai/records.py): committed files, rejections by hand, writers."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from husai import records as R
from husai import stats
from husai.analysis import ratio_dict, stats_dict

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "metrics").rglob("*.json"))


def test_every_committed_metric_file_has_a_record() -> None:
    assert set(R.FILES) <= set(COMMITTED)
    assert any(f.startswith("metrics/sweep/") for f in COMMITTED)
    for f in COMMITTED:
        R.record_for(f)  # no KeyError
    assert R.record_for("metrics/sweep/topk-d8/topk-d8-k4.json") is R.SweepConfigFile
    with pytest.raises(KeyError, match="not a metric file"):
        R.record_for("metrics/curves/sweep.csv")


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_metric_file_follows_its_record(name: str) -> None:
    R.validate(json.loads((ROOT / name).read_text()), R.record_for(name), name)


STAT = {"mean": 0.5, "std": 0.1, "ci": [0.4, 0.6], "n_seeds": 3, "n_pairs": 3}


def stability_entry() -> dict:
    """A hand-made minimal configuration of metrics/stability/modular.json."""
    ratio = {
        "ratio": 2.0,
        "ci": [1.5, 2.5],
        "difference": 0.2,
        "difference_ci": None,
        "paired": False,
    }
    entry = {
        "architecture": "topk",
        "d_sae": 8,
        "d_in": 4,
        "seeds": [1, 2, 3],
        "random_pwmcc_expected": 0.3,
        "pwmcc_ratio_to_random": ratio,
        "pwmcc_ratio_to_untrained": {**ratio, "paired": True},
        "subspace_overlap": {
            "4": {"trained": STAT, "untrained_mean": None, "random_expectation": 1.0}
        },
        "pair_pwmcc": [[None, 0.5], [0.5, None]],
    }
    for prefix in ("", "random_", "untrained_"):
        entry[f"{prefix}pwmcc"] = dict(STAT)
        entry[f"{prefix}hungarian_mcc"] = None  # matchings skipped
        entry[f"{prefix}shared_fraction"] = None
    live: dict = {"seeds": [1, 2, 3], "subspace_rank": None}
    for prefix in ("live", "isotropic_live", "subspace_live", "data_live"):
        live[f"{prefix}_pwmcc"] = None if prefix == "subspace_live" else dict(STAT)
        live[f"{prefix}_hungarian_mcc"] = None
        live[f"{prefix}_shared_fraction"] = None
    for kind in ("isotropic", "subspace", "data"):
        live[f"live_pwmcc_ratio_to_{kind}"] = None if kind == "subspace" else ratio
    live |= {"n_live": STAT, "n_live_per_seed": [8, 8, 8], "distinct_live": STAT}
    live["distinct_live_per_seed"] = [8, 7, 8]
    entry["live"] = live
    return copy.deepcopy(entry)


def test_a_hand_made_file_validates_and_optional_keys_may_be_absent() -> None:
    R.validate({"topk": stability_entry()}, R.StabilityMetrics)
    with_sub = {
        **stability_entry(),
        "subspace_rank": 2,
        "subspace_random_pwmcc": STAT,
        "pwmcc_ratio_to_subspace": stability_entry()["pwmcc_ratio_to_random"],
    }
    R.validate({"topk": with_sub}, R.StabilityMetrics)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("d_sae"), r"^metrics/stability/modular\.json: topk/d_sae: missing"),
        (lambda e: e["pwmcc"].pop("ci"), r"topk/pwmcc/ci: missing \(a Stat has mean, std, ci"),
        (
            lambda e: e["pwmcc"].update(ci_low=0.4, ci_high=0.6),
            r"topk/pwmcc/ci_low: unexpected key \(a Stat has mean, std, ci, n_seeds, n_pairs\)",
        ),
        (lambda e: e.update(extra=1), r"topk/extra: unexpected key"),
        (lambda e: e.update(d_sae="8"), r"topk/d_sae: expected int, got a string \(\"8\"\)"),
        (lambda e: e.update(d_sae=8.0), r"topk/d_sae: expected int, got a number"),
        (lambda e: e.update(d_sae=True), r"topk/d_sae: expected int, got a boolean"),
        (lambda e: e["pwmcc"].update(mean=True), r"topk/pwmcc/mean: expected number \| null"),
        (lambda e: e["pwmcc"].update(ci=[0.4]), r"topk/pwmcc/ci: expected \[number, number\]"),
        (lambda e: e["pwmcc"].update(ci=[0.4, None]), r"topk/pwmcc/ci/1: expected number"),
        (lambda e: e.update(pwmcc=None), r"topk/pwmcc: expected a Stat object, got null"),
        (lambda e: e["seeds"].append("4"), r"topk/seeds/3: expected int"),
        (
            lambda e: e["subspace_overlap"]["4"]["trained"].pop("n_pairs"),
            r"topk/subspace_overlap/4/trained/n_pairs: missing",
        ),
        (lambda e: e["pair_pwmcc"][1].__setitem__(0, "x"), r"topk/pair_pwmcc/1/0: expected"),
        (
            lambda e: e["pwmcc_ratio_to_random"].update(paired=1),
            r"topk/pwmcc_ratio_to_random/paired: expected bool",
        ),
    ],
)
def test_a_file_off_its_record_is_rejected_naming_the_json_path(change, message) -> None:
    entry = stability_entry()
    R.validate({"topk": entry}, R.StabilityMetrics)
    change(entry)
    with pytest.raises(R.RecordError, match=message):
        R.validate({"topk": entry}, R.StabilityMetrics, "metrics/stability/modular.json")


def test_the_top_level_is_named_too() -> None:
    with pytest.raises(
        R.RecordError,
        match=r"^x\.json: \(top level\): expected a "
        r"DynamicsMetrics object, got a list",
    ):
        R.validate([], R.DynamicsMetrics, "x.json")
    with pytest.raises(R.RecordError, match=r"configs: expected a mapping of DynamicsConfig"):
        R.validate({"threshold": 0.7, "configs": []}, R.DynamicsMetrics)


def test_an_old_ci_low_file_is_rejected() -> None:
    """Dynamics, geometry and predictors wrote ci_low / ci_high before the contract."""
    old = {
        "rule": {"threshold": 0.7, "shared_with": "majority", "absolute": True},
        "configs": {
            "topk": {
                "architecture": "topk",
                "seeds": [1, 2, 3],
                "d_sae": 8,
                "min_other_seeds": 2,
                "n_latents": 24,
                "n_live": 10,
                "n_shared": 3,
                "shared_count_histogram": {"0": 21, "1": 1, "2": 2},
                "per_seed": {},
                "auc": {
                    "purity": {
                        "mean": 0.6,
                        "std": 0.1,
                        "ci_low": 0.5,
                        "ci_high": 0.7,
                        "n_seeds": 3,
                        "n_pairs": None,
                        "pooled": 0.6,
                    }
                },
                "n_shared_with_any": 4,
                "auc_shared_with_any": {"purity": 0.6},
                "means": {},
                "shared_rate_by_decile": {},
            }
        },
    }
    with pytest.raises(
        R.RecordError, match=r"predictors\.json: configs/topk/auc/purity/ci: missing"
    ):
        R.validate(old, R.PredictorsMetrics, "metrics/predictors.json")
    purity = old["configs"]["topk"]["auc"]["purity"]
    purity["ci"] = [purity.pop("ci_low"), purity.pop("ci_high")]
    old["configs"]["topk"]["auc"]["purity"] = {
        k: purity[k] for k in ("mean", "std", "ci", "n_seeds", "n_pairs", "pooled")
    }
    R.validate(old, R.PredictorsMetrics)


def test_sweep_files_are_told_apart_by_skipped() -> None:
    skipped = {
        "config": "topk-d8-k16",
        "architecture": "topk",
        "d_sae": 8,
        "sparsity": {"knob": "k", "value": 16},
        "skipped": True,
        "reason": "k > d_sae",
    }
    R.validate(skipped, R.SweepConfigFile)
    # a skipped file with a reason missing is explained as a skipped file
    with pytest.raises(R.RecordError, match=r"^reason: missing \(a SweepSkipped has"):
        R.validate({k: v for k, v in skipped.items() if k != "reason"}, R.SweepConfigFile)
    # a trained one lacking its analysis is explained as a trained file
    with pytest.raises(R.RecordError, match=r"hyperparameters: missing \(a SweepTrained has"):
        R.validate({**skipped, "skipped": False}, R.SweepConfigFile)
    with pytest.raises(
        R.RecordError,
        match=r"sparsity/knob: expected \"k\" \| "
        r"\"l1_coefficient\" \| \"l0_coefficient\"",
    ):
        R.validate({**skipped, "sparsity": {"knob": "l2", "value": 1}}, R.SweepConfigFile)


def test_a_float_field_takes_any_json_number_but_not_a_boolean() -> None:
    R.validate({"knob": "k", "value": 16}, R.Sparsity)
    R.validate({"knob": "k", "value": 1.5}, R.Sparsity)
    with pytest.raises(R.RecordError, match="value: expected number, got a boolean"):
        R.validate({"knob": "k", "value": False}, R.Sparsity)


# ----------------------------------------------------------------------------- writers

HAND = np.array([[np.nan, 0.2, 0.3], [0.2, np.nan, 0.4], [0.3, 0.4, np.nan]])


def test_every_statistic_writer_produces_the_stat_record() -> None:
    undefined = HAND.copy()
    undefined[0, 1] = undefined[1, 0] = np.nan
    written = {
        "SeedStats.to_dict": stats.seed_stats(HAND).to_dict(),
        "value_stats": stats.value_stats([0.5, 0.7, 0.9]).to_dict(),
        "value_stats, one seed": stats.value_stats([0.5]).to_dict(),
        "pair_stats": stats.pair_stats(HAND),
        "pair_stats, a pair undefined": stats.pair_stats(undefined),
        "pair_stats, none defined": stats.pair_stats(stats.pair_matrix(3)),
        "per_seed_stats": stats.per_seed_stats([0.5, None, 0.9, 0.7]),
        "per_seed_stats, none defined": stats.per_seed_stats([None]),
        "analysis.stats_dict": stats_dict(stats.seed_stats(HAND)),
    }
    for what, d in written.items():
        assert list(d) == ["mean", "std", "ci", "n_seeds", "n_pairs"], what
        R.validate(json.loads(json.dumps(d)), R.Stat, what)
    s = stats.seed_stats(HAND)
    assert written["pair_stats"]["ci"] == [s.ci_low, s.ci_high]
    assert written["pair_stats, a pair undefined"]["ci"] is None
    assert written["value_stats, one seed"]["ci"] is None
    r = stats.ratio_stats(HAND, HAND / 2, paired=False)
    for d in (r.to_dict(), ratio_dict(r)):
        assert list(d) == ["ratio", "ci", "difference", "difference_ci", "paired"]
        R.validate(d, R.Ratio)
    assert r.to_dict()["ci"] == [r.ratio_ci_low, r.ratio_ci_high]


def test_a_stage_writes_only_what_follows_its_record(tmp_path: Path) -> None:
    from stages._common import write_json

    good = {"topk": stability_entry()}
    write_json(tmp_path / "good.json", good, R.StabilityMetrics)
    assert json.loads((tmp_path / "good.json").read_text()) == good
    bad = copy.deepcopy(good)
    bad["topk"]["pwmcc"] = stats.SeedStats(0.5, 0.1, 0.4, 0.6, 3, 3).__dict__  # ci_low...
    with pytest.raises(R.RecordError, match=r"bad\.json: topk/pwmcc/ci: missing"):
        write_json(tmp_path / "bad.json", bad, R.StabilityMetrics)
    assert not (tmp_path / "bad.json").exists()
    nan = copy.deepcopy(good)
    nan["topk"]["d_in"] = float("nan")  # written as null: not an int
    with pytest.raises(R.RecordError, match=r"topk/d_in: expected int, got null"):
        write_json(tmp_path / "nan.json", nan, R.StabilityMetrics)


def test_the_contract_needs_neither_torch_nor_the_rest_of_husai() -> None:
    code = (
        "import sys, husai.records, paper.build, paper.report, paper.schema; "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('husai')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['husai', 'husai.records']"
