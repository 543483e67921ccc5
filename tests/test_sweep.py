"""The sweep's params, grid cells and summary logic against known answers."""

from __future__ import annotations

import copy

import pytest

from husai.config import parse_params
from husai.errors import ParamError
from stages.sweep_summary import goldilocks, matched_l0, summarise
from tests.test_sae_stage import with_value


def test_grid_cells_resolve_and_skip_invalid_combinations(tiny_params_raw) -> None:
    prm = parse_params(tiny_params_raw)
    cells = prm.sweep_configs("topk", 8)
    knob, value, hp = cells["topk-d8-k2"]
    assert (knob, value) == ("k", 2)
    assert (hp.d_sae, hp.k, hp.epochs, hp.lr, hp.seeds) == (8, 2, 6, 0.01, (42, 123, 456))
    # trained to the sweep's convergence criterion (epochs: the maximum)
    assert (hp.convergence, hp.convergence_tol, hp.convergence_window) == (
        "explained_variance",
        0.001,
        2,
    )
    assert cells["topk-d8-k16"][2] == "k = 16 with d_sae = 8: must be <= d_sae = 8"
    # each further learning rate of sweep.lr: the same levels, named with their rate
    assert list(cells) == ["topk-d8-k2", "topk-d8-k16", "topk-d8-k2-lr0.003", "topk-d8-k16-lr0.003"]
    assert cells["topk-d8-k2-lr0.003"][2].lr == 0.003
    knob, value, hp = prm.sweep_configs("standard", 32)["standard-d32-l1c3"]
    assert (knob, value, hp.l1_coefficient, hp.architecture) == (
        "l1_coefficient",
        3.0,
        3.0,
        "standard",
    )
    with pytest.raises(ParamError, match=r"^sweep.d_sae = \[8, 32\]: does not list 9$"):
        prm.sweep_configs("topk", 9)


def test_default_grid_is_large_enough(repo_root) -> None:
    from ruamel.yaml import YAML

    prm = parse_params(YAML(typ="safe", pure=True).load((repo_root / "params.yaml").read_text()))
    sw = prm.sweep
    assert {"topk", "standard"} <= set(sw.architectures)  # both families (matched L0)
    # the whole grid is one -S away: every architecture has its levels
    assert {"topk", "batchtopk", "standard", "jumprelu"} <= set(sw.sparsity)
    # from below the default activations' effective rank (~10) to at least 2x d_model
    assert min(sw.d_sae) < 10 and max(sw.d_sae) >= 256
    trained = [
        hp
        for a in sw.architectures
        for d in sw.d_sae
        for (_, _, hp) in prm.sweep_configs(a, d).values()
        if not isinstance(hp, str)
    ]
    assert len(trained) >= 30 and len(trained) * len(sw.seeds) >= 150
    assert len(sw.seeds) == 5
    # every configuration trains to the baseline SAEs' criterion; the old 2-epoch sweep
    # is one point of the training-length axis
    base = prm.sae_configs()["topk"]
    for hp in trained:
        assert (hp.convergence, hp.convergence_tol, hp.convergence_window) == (
            base.convergence,
            base.convergence_tol,
            base.convergence_window,
        )
    assert 2 in sw.lengths


@pytest.mark.parametrize(
    ("key", "value", "named", "reason"),
    [
        (
            "sweep.architectures",
            ["topk", "gated"],
            "sweep.sparsity",
            "must list sparsity levels for architecture gated",
        ),
        ("sweep.architectures", ["topkk"], "sweep.architectures[0]", "unknown architecture"),
        ("sweep.sparsity.topk", [2, 2.5], None, "k levels must be integers >= 1"),
        ("sweep.sparsity.standard", [0.0], None, "l1_coefficient levels must be > 0"),
        ("sweep.d_sae", [8, 8], None, "must not repeat a size"),
        ("sweep.seeds", [1], None, "at least two seeds"),
        ("sweep.epochs", 0, None, "must be >= 1"),
        ("sweep.lr", [0.01, 0.01], None, "none repeated"),
        ("sweep.lr", [], None, "at least one learning rate"),
        ("sweep.lengths", [4, 2], None, "must be increasing epoch counts in 1..5"),
        ("sweep.lengths", [6], None, "below sweep.epochs"),
        ("sweep.convergence", "atoms", None, "must be one of loss, explained_variance"),
        ("sweep.convergence_tol", -1.0, None, "must be >= 0"),
        ("sweep.bogus", 1, None, "unknown key"),
        ("sweep.min_explained_variance", 1.0, None, "must be < 1"),
    ],
)
def test_bad_sweep_params_name_their_key(tiny_params_raw, key, value, named, reason) -> None:
    with pytest.raises(ParamError) as info:
        parse_params(with_value(tiny_params_raw, key, value))
    assert str(info.value).startswith(f"{named or key} = ") and reason in str(info.value)
    assert "\n" not in str(info.value)


def entry(
    config: str,
    arch: str,
    d: int,
    l0: float,
    ratio: float,
    ci: list[float] | None,
    skipped: bool = False,
    ev: float = 0.9,
    converged: list[bool] | None = None,
) -> dict:
    base = {
        "config": config,
        "architecture": arch,
        "d_sae": d,
        "sparsity": {"knob": "k", "value": 4},
        "skipped": skipped,
    }
    if skipped:
        return {**base, "reason": "k = 64 with d_sae = 16: must be <= d_sae = 16"}
    stats = {"mean": 0.3 * ratio, "std": 0.01, "ci": None}
    return {
        **base,
        "metrics": {"l0": l0, "explained_variance": ev, "frac_alive": 0.75},
        "training": {"steps": 100, "final_epoch_loss": [0.1], "converged": converged},
        "stability": {
            "pwmcc": stats,
            "random_pwmcc": {"mean": 0.3},
            "untrained_pwmcc": {"mean": 0.3},
            "hungarian_mcc": None,
            "shared_fraction": None,
            "pwmcc_ratio_to_random": {"ratio": ratio, "ci": ci},
            "pwmcc_ratio_to_untrained": {"ratio": ratio, "ci": ci},
        },
        "recovery": {
            k: {"mean": 0.5}
            for k in (
                "key_frequency_coverage",
                "pure_latent_fraction",
                "decoder_alignment",
                "random_decoder_alignment",
            )
        },
    }


def test_summary_ranks_compares_and_finds_no_zone_for_a_falling_curve() -> None:
    entries = [
        entry("a16", "topk", 16, 4.0, 3.0, [2.8, 3.2]),
        entry("b16", "standard", 16, 5.0, 2.0, [1.9, 2.1]),
        entry("c16", "topk", 16, 0, 0, None, skipped=True),
        entry("a64", "topk", 64, 4.2, 1.5, [1.4, 1.6]),
        entry("b64", "standard", 64, 30.0, 1.8, [1.7, 1.9]),
        entry("a256", "topk", 256, 4.0, 1.02, [0.98, 1.06]),
    ]
    s = summarise(entries, 1.0, [1, 2, 3], 2, [4.0, 32.0])
    assert (s["n_configs"], s["n_saes"], s["n_skipped"]) == (5, 15, 1)
    assert [r["config"] for r in s["best_ratio"]] == ["a16", "b16", "b64", "a64", "a256"]
    assert s["best_ratio"][0]["ratio_ci"] == [2.8, 3.2]
    assert s["by_d_sae"]["64"]["best_config"] == "b64" and s["by_d_sae"]["256"]["n_stable"] == 0
    assert s["rows"][0]["dead_fraction"] == pytest.approx(0.25)
    # matched L0: at d_sae 16, target 4 matches a16 (4.0) and b16 (5.0, within x1.5);
    # at d_sae 64 target 4 has only a64 (b64's 30 is too far): no comparison; target 32: only b64
    assert [(c["d_sae"], c["target_l0"]) for c in s["matched_l0"]] == [(16, 4.0)]
    assert s["matched_l0"][0]["best_architecture"] == "topk"
    assert s["architectures_at_matched_l0"]["topk"] == {
        "n_comparisons": 1,
        "wins": 1,
        "mean_ratio": 3.0,
    }
    g = s["goldilocks"]
    assert not g["zone"] and g["peak_d_sae"] == 16 and g["stable_d_sae"] == [16, 64]
    assert g["answer"].startswith("No Goldilocks zone above d_sae 16")
    assert "No configuration is stable above d_sae 64" in g["answer"]


def test_a_configuration_that_does_not_reconstruct_is_never_stable() -> None:
    """The audit's cases: PWMCC well above both baselines at EV -0.05 and 0.05 (a
    dictionary that does not reconstruct its data) are reported, not counted stable."""
    entries = [
        entry("ok", "topk", 16, 4.0, 3.0, [2.8, 3.2], ev=0.9, converged=[True, True]),
        entry("neg", "batchtopk", 16, 4.0, 3.0, [2.8, 3.2], ev=-0.05),
        entry("low", "standard", 16, 4.0, 3.0, [2.8, 3.2], ev=0.05, converged=[True, False]),
        entry("edge", "topk", 64, 4.0, 3.0, [2.8, 3.2], ev=0.5),
    ]
    s = summarise(entries, 1.0, [1, 2], 2, [4.0], min_ev=0.5)
    rows = {r["config"]: r for r in s["rows"]}
    assert [rows[n]["reconstructs"] for n in ("ok", "neg", "low", "edge")] == [
        True,
        False,
        False,
        True,
    ]
    assert [rows[n]["stable"] for n in ("ok", "neg", "low", "edge")] == [True, False, False, True]
    assert [rows[n]["converged"] for n in ("ok", "neg", "low")] == [True, None, False]
    assert rows["ok"]["steps"] == 100
    assert (s["n_not_reconstructing"], s["n_not_converged"]) == (2, 1)
    assert s["by_d_sae"]["16"]["n_stable"] == 1
    assert s["by_d_sae"]["16"]["n_not_reconstructing"] == 2
    # ranked, best by size and matched L0 read the reconstructing configurations only
    assert [r["config"] for r in s["best_ratio"]] == ["edge", "ok"]
    assert s["by_d_sae"]["16"]["best_config"] == "ok"
    assert all(
        set(c["architectures"]) <= {"topk"} for c in s["matched_l0"]
    )  # batchtopk and standard only had non-reconstructing rows
    assert s["min_explained_variance"] == 0.5


def test_an_interior_peak_with_clear_cis_is_a_zone() -> None:
    by_d = {
        16: {"best_config": "x", "best_ratio": 1.2, "best_ratio_ci": [1.1, 1.3]},
        64: {"best_config": "y", "best_ratio": 2.0, "best_ratio_ci": [1.8, 2.2]},
        256: {"best_config": "z", "best_ratio": 1.1, "best_ratio_ci": [1.0, 1.2]},
    }
    rows = [{"d_sae": 64, "stable": True}]
    g = goldilocks(by_d, rows)
    assert g["zone"] and g["peak_d_sae"] == 64 and g["answer"].startswith("Goldilocks zone")
    overlapping = copy.deepcopy(by_d)
    overlapping[16]["best_ratio_ci"] = [1.1, 1.9]
    assert not goldilocks(overlapping, rows)["zone"]


def test_matched_l0_prefers_the_nearest_in_log_scale() -> None:
    rows = [
        {
            "config": c,
            "architecture": a,
            "d_sae": 8,
            "l0": l0,
            "ratio": r,
            "pwmcc": 0.5,
            "explained_variance": 0.9,
            "ratio_ci": None,
        }
        for c, a, l0, r in [
            ("t", "topk", 8.0, 2.0),
            ("s1", "standard", 5.0, 1.0),
            ("s2", "standard", 12.0, 3.0),
        ]
    ]
    (cell,) = matched_l0(rows, [8.0])
    # |log(5/8)| = 0.47 > |log(12/8)| = 0.405: s2
    assert cell["architectures"]["standard"]["config"] == "s2"
    assert cell["best_architecture"] == "standard"


def test_the_data_subspace_baseline_is_reported_beside_the_answer() -> None:
    entries = [
        entry("a16", "topk", 16, 4.0, 3.0, [2.8, 3.2]),
        entry("a64", "topk", 64, 4.0, 2.0, [1.9, 2.1]),
    ]
    entries[0]["stability"] |= {
        "subspace_random_pwmcc": {"mean": 0.8},
        "pwmcc_ratio_to_subspace": {"ratio": 1.1, "ci": [1.05, 1.15]},
    }
    entries[1]["stability"] |= {
        "subspace_random_pwmcc": {"mean": 0.7},
        "pwmcc_ratio_to_subspace": {"ratio": 0.9, "ci": [0.8, 1.0]},
    }
    s = summarise(entries, 1.0, [1, 2, 3], 2, [4.0])
    first, second = s["rows"]
    assert (first["ratio_subspace"], first["above_subspace"]) == (1.1, True)
    assert (second["ratio_subspace_ci"], second["above_subspace"]) == ([0.8, 1.0], False)
    assert (
        "principal subspace, 1 of 2 configurations are above with their CI; the highest "
        "trained/subspace ratio is 1.10 [1.05, 1.15] (a16)"
    ) in s["goldilocks"]["answer"]


def test_sweep_cells_depend_only_on_the_sae_params_a_sweep_reads(repo_root) -> None:
    """dvc.yaml's sweep stage lists exactly the `sae` keys some architecture's cell reads
    (husai.sae.registry.sweep_hyperparams), never a key every cell overrides."""
    from ruamel.yaml import YAML

    from husai.sae.config import ARCHITECTURES
    from husai.sae.registry import sweep_hyperparams

    stage = YAML(typ="safe", pure=True).load((repo_root / "dvc.yaml").read_text())["stages"][
        "sweep"
    ]
    listed = [p for p in stage["params"] if isinstance(p, str) and p.startswith("sae")]
    assert listed == list(sweep_hyperparams(ARCHITECTURES))
    for overridden in (
        "sae",
        "sae.k",
        "sae.l1_coefficient",
        "sae.l0_coefficient",
        "sae.lr",
        "sae.epochs",
        "sae.d_sae",
        "sae.seeds",
        "sae.architecture",
    ):
        assert overridden not in listed


def test_a_cell_records_only_the_hyperparameters_it_reads() -> None:
    from husai.sae import SAEConfig
    from stages.sweep import used_hyperparams

    topk = used_hyperparams(SAEConfig(architecture="topk", d_in=8, d_sae=16, k=2))
    assert topk["k"] == 2 and topk["d_in"] == 8 and "aux_loss_coefficient" in topk
    assert not {"l1_coefficient", "l0_coefficient", "jumprelu_bandwidth"} & set(topk)
    standard = used_hyperparams(SAEConfig(architecture="standard", d_in=8, d_sae=16))
    assert "l1_coefficient" in standard and "k" not in standard


def live_entry(
    config: str, d: int, live: float, null: float, lr: float = 0.001, length_live=0.9
) -> dict:
    """A trained entry whose live PWMCC (CI +-0.01) and shift null (CI +-0.01) are given,
    with one length (2 epochs) at live PWMCC ``length_live`` and the same null."""

    def st(m: float) -> dict:
        return {"mean": m, "std": 0.01, "ci": [m - 0.01, m + 0.01]}

    e = entry(config, "topk", d, 4.0, 2.0, [1.5, 2.5], converged=[True, True])
    e["hyperparameters"] = {"lr": lr}
    e["training"]["epochs_run"] = [30, 40]
    e["live"] = {
        "live_pwmcc": st(live),
        "shift_null_live_pwmcc": st(null),
        "subspace_live_pwmcc": st(0.8),
        "above_shift_null": live - 0.01 > null + 0.01,
        "n_live": {"mean": 50.0},
    }
    e["lengths"] = [
        {
            "epochs": 2,
            "explained_variance": 0.6,
            "l0": 4.0,
            "pwmcc": st(0.5),
            "pwmcc_ratio_to_random": {"ratio": 1.7, "ci": None},
            "live": {
                "live_pwmcc": st(length_live),
                "shift_null_live_pwmcc": st(null),
                "above_shift_null": length_live - 0.01 > null + 0.01,
            },
        }
    ]
    return e


def test_live_answers_by_size_length_and_learning_rate() -> None:
    entries = [
        live_entry("a8", 8, 0.70, 0.70),  # at the null
        live_entry("a64", 64, 0.90, 0.80),  # above it by 0.10
        live_entry("b64", 64, 0.85, 0.80, lr=0.003),  # above it by 0.05
        live_entry("a256", 256, 0.60, 0.65),  # below it
    ]
    s = summarise(entries, 1.0, [1, 2], 200, [4.0], lrs=[0.001, 0.003], lengths=[2])
    g = s["goldilocks_live"]
    assert g["sizes_above"] == [64] and g["zone"] is True  # interior only
    assert g["by_d_sae"]["64"] == {
        "n_configs": 2,
        "n_above_shift_null": 2,
        "best_config": "a64",
        "best_excess": pytest.approx(0.10),
    }
    assert g["by_d_sae"]["256"]["best_excess"] == pytest.approx(-0.05)
    assert "only at interior sizes (64)" in g["answer"]
    assert s["n_above_shift_null"] == 2
    short, final = s["by_length"]
    assert (short["epochs"], final["epochs"]) == (2, None)
    # at 2 epochs live 0.9 everywhere: above every null but explained variance 0.6 >= 0.5
    assert short["n_above_shift_null"] == 4 and final["n_above_shift_null"] == 2
    assert short["live_pwmcc"] == pytest.approx(0.9)
    assert final["live_pwmcc"] == pytest.approx((0.70 + 0.90 + 0.85 + 0.60) / 4)
    assert s["by_lr"]["0.001"]["n_configs"] == 3 and s["by_lr"]["0.003"]["n_above_shift_null"] == 1
    assert s["by_lr"]["0.001"]["max_epochs"] == 40
    # an end of the grid above the null: no band
    entries[0] = live_entry("a8", 8, 0.95, 0.70)
    g = summarise(entries, 1.0, [1, 2], 200, [4.0], lengths=[2])["goldilocks_live"]
    assert g["sizes_above"] == [8, 64] and g["zone"] is False and "no interior band" in g["answer"]
    # nothing above: said so
    none = [live_entry("a8", 8, 0.7, 0.7), live_entry("a64", 64, 0.7, 0.7)]
    g = summarise(none, 1.0, [1, 2], 200, [4.0], lengths=[2])["goldilocks_live"]
    assert g["zone"] is False and g["answer"].startswith("No configuration's live atoms")
