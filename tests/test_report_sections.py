"""Report sections (paper/report/): known answers of each section's decisions, and wording
that follows the decision record, on hand-made metric files (tests/test_paper.py's fakes).

Each case changes the fake files so that one decision flips, checks the record returned
by the section's ``decide`` and the sentence its ``render`` writes for it."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re
from pathlib import Path

import pytest

from paper.build import Build
from paper.cite import Citer
from paper.figures import FIGURES
from paper.metrics import Metrics
from paper.report import (
    QUESTIONS,
    SECTIONS,
    _guarded,
    controls,
    fourier,
    matched_l0,
    rq1,
    rq2,
    rq3,
    rq4,
    rq5,
    rq6,
    stability,
    transformer,
)
from paper.report.common import above, relation
from paper.schema import Stat
from tests.test_paper import fake_metrics, stats, write_repo

BUILD = Build(rendered=[f.name for f in FIGURES])
_repos = itertools.count()

STABILITY = "metrics/stability/modular.json"
SWEEP = "metrics/sweep.json"


@pytest.fixture
def files() -> dict:
    return copy.deepcopy(fake_metrics())


@pytest.fixture
def metrics(tmp_path: Path):
    """``metrics(files)``: the hand-made files written to a fresh root, read back."""

    def make(files: dict) -> Metrics:
        return Metrics(write_repo(tmp_path / f"repo{next(_repos)}", files))

    return make


def words(module, m: Metrics, facts=None) -> str:
    """The section's Markdown for ``facts`` (default: decided from ``m``), markers removed."""
    c = Citer(m)
    text = module.render(c, module.decide(m) if facts is None else facts, BUILD)
    return re.sub(r"<!--n\d+-->", "", text)


# ----------------------------------------------------------------------------- shared helpers


def test_above_and_relation_compare_the_trained_ci_with_the_baseline_mean(files, metrics) -> None:
    entry = files[STABILITY]["topk"]  # pwmcc 0.5 [0.48, 0.52]
    entry["random_pwmcc"] = stats(0.47)
    entry["untrained_pwmcc"] = stats(0.49)
    entry["subspace_random_pwmcc"] = stats(0.53)
    m = metrics(files)
    t = Stat(
        STABILITY, ("topk", "pwmcc", "mean"), ("topk", "pwmcc", "ci", 0), ("topk", "pwmcc", "ci", 1)
    )

    def base(kind: str) -> Stat:
        return Stat(STABILITY, ("topk", f"{kind}_pwmcc", "mean"))

    assert above(m, t, base("random")) is True  # 0.48 > 0.47
    assert above(m, t, base("random"), base("untrained")) is False  # 0.48 < 0.49
    assert above(m, Stat(STABILITY, ("topk", "pwmcc", "mean")), base("random")) is None  # no CI
    assert relation(m, t, base("random")) == "above"
    assert relation(m, t, base("untrained")) == "within"  # 0.49 inside [0.48, 0.52]
    assert relation(m, t, base("subspace_random")) == "below"  # 0.52 < 0.53
    assert relation(m, Stat(STABILITY, ("topk", "pwmcc", "mean")), base("random")) == "no_ci"


# ----------------------------------------------------------------------------- sections


def test_transformer_verdicts_follow_the_run(files, metrics) -> None:
    f = transformer.decide(metrics(files))
    assert f == transformer.Facts(True, True, False)
    text = words(transformer, metrics(files))
    assert "and meets the acceptance bar" in text and "first crossed the grokking threshold" in text
    assert "This run uses fraction" not in text

    files["metrics/transformer.json"].update(grokked=False, grokking_epoch=None)
    files["params.yaml"] = "task:\n  p: 31\n  frac_train: 0.4\n  seed: 1\n"
    m = metrics(files)
    assert transformer.decide(m) == transformer.Facts(False, False, False)
    text = words(transformer, m)
    assert "does **not** meet the acceptance bar" in text
    assert "never crossed the grokking threshold" in text

    files["metrics/transformer.json"]["grokking_epoch"] = 300  # grokked at the claimed 0.4
    m = metrics(files)
    assert transformer.decide(m).runs_claimed_fraction
    assert "This run uses fraction 0.4 itself" in words(transformer, m)


def test_fourier_trained_share_against_the_untrained_one(files, metrics) -> None:
    m = metrics(files)  # 0.8 trained, 0.13 untrained
    assert fourier.decide(m) == fourier.Facts(2, True)
    assert "so the trained model holds far more than chance" in words(fourier, m)
    files["metrics/fourier.json"]["activation_key_frequency_variance_share"] = 0.1
    m = metrics(files)
    assert fourier.decide(m).trained_above_untrained is False
    assert "so the trained model does **not** hold more than chance" in words(fourier, m)


def test_stability_caveat_every_configuration_below_the_data_subspace_or_not(
    files, metrics
) -> None:
    m = metrics(files)  # trained / data-subspace ratios 0.62, 0.75, 0.88 (CI half-width 0.02)
    v = stability.decide(m).caveat
    assert v.below == ("topk", "batchtopk", "standard") and v.above == ()
    assert v.all_below and v.subspace_shares_more  # random data-subspace shared fraction 1.0
    text = words(stability, m)
    assert "Every baseline configuration is **below** it (CI under unity)" in text
    assert "Even by this measure random atoms in the data subspace do better" in text

    entry = files[STABILITY]["standard"]
    entry["pwmcc_ratio_to_subspace"]["ratio"] = 1.2
    entry["pwmcc_ratio_to_subspace"]["ci"] = [1.1, 1.3]
    entry["subspace_random_shared_fraction"] = stats(0.05, 0.01)  # below standard's 0.12
    m = metrics(files)
    v = stability.decide(m).caveat
    assert v.above == ("standard",) and v.below == ("topk", "batchtopk")
    assert not v.all_below and not v.subspace_shares_more
    text = words(stability, m)
    assert "Above it (CI): `standard`; below it: `topk`, `batchtopk`." in text
    assert "**below** it" not in text and "Even by this measure" not in text


def test_matched_l0_winner_and_whether_its_ci_is_clear_of_the_others(files, metrics) -> None:
    comp = files[SWEEP]["matched_l0"][0]  # topk ratio 3.24 [3.14, 3.34], standard 3.56 [3.46, 3.66]
    comp["best_architecture"] = "standard"
    m = metrics(files)
    f = matched_l0.decide(m)
    assert f.architectures == ("standard", "topk")
    assert [(c.winner, c.present) for c in f.comparisons] == [("standard", (True, True))]
    assert words(matched_l0, m).splitlines()[4].endswith("| standard |")
    w = rq2.decide(m).matched
    assert w.decisive == ((SWEEP, ("matched_l0", 0, "architectures", "standard", "ratio")),)
    assert not w.mostly_indistinguishable
    text = words(rq2, m)
    assert (
        "The winner's CI lies above every other architecture's CI in 1 of 1 comparisons. " in text
    )

    comp["architectures"]["standard"]["ratio_ci"] = [3.3, 3.8]  # overlaps topk's [3.14, 3.34]
    m = metrics(files)
    w = rq2.decide(m).matched
    assert w.decisive == () and w.mostly_indistinguishable
    text = words(rq2, m)
    assert (
        "in 0 of 1 comparisons: at matched L0 the architectures are mostly indistinguishable"
        in text
    )


def test_rq2_baseline_ci_above_the_baselines_or_not(files, metrics) -> None:
    m = metrics(files)  # topk PWMCC 0.5 [0.48, 0.52]; isotropic 0.31, untrained 0.33, subspace 0.8
    topk = rq2.decide(m).baselines[0]
    assert (topk.name, topk.above_both, topk.subspace) == ("topk", True, "below")
    assert "`topk` above both, below the data-subspace baseline;" in words(rq2, m)

    entry = files[STABILITY]["topk"]
    entry["untrained_pwmcc"] = stats(0.49)  # inside the CI: not above both
    entry["subspace_random_pwmcc"] = stats(0.45)  # under the CI: above it
    m = metrics(files)
    topk = rq2.decide(m).baselines[0]
    assert (topk.above_both, topk.subspace) == (False, "above")
    assert "`topk` **not** above both, above the data-subspace baseline;" in words(rq2, m)

    entry["pwmcc"]["ci"] = None  # two seeds: no CI to decide with
    del entry["subspace_random_pwmcc"]
    m = metrics(files)
    topk = rq2.decide(m).baselines[0]
    assert (topk.above_both, topk.subspace) == (None, None)
    assert "`topk` no CI;" in words(rq2, m)


def test_wording_follows_the_record_not_the_metrics(files, metrics) -> None:
    """render decides nothing: a record saying the opposite of the files is what is written."""
    m = metrics(files)
    f = rq2.decide(m)
    flipped = dataclasses.replace(
        f, baselines=(dataclasses.replace(f.baselines[0], above_both=False), *f.baselines[1:])
    )
    assert "`topk` **not** above both" in words(rq2, m, flipped)
    g = rq1.decide(m)
    assert "**A Goldilocks zone.**" in words(rq1, m, dataclasses.replace(g, zone=True))


def test_goldilocks_answer_peak_and_counts(files, metrics) -> None:
    m = metrics(files)  # zone false; best ratio 3.75 at d_sae 8, 3.15 at 16; effective rank 12
    g = rq1.decide(m)
    assert not g.zone and g.falling and g.all_stable
    assert [m.get(SWEEP, p) for p in g.low_rank_sizes] == [8]  # d_sae 8 <= 12 < 16
    assert g.subspace.all_above and len(g.subspace.rows) == 13
    assert g.jumprelu.flat  # L0 6.01 and 6.1 for coefficients 1 and 10
    text = words(rq1, m)
    assert "the SAEs):* **No Goldilocks zone.** " in text  # the all-atom answer, secondary
    assert "It falls with every step up in size, so the peak is at the smallest size tried" in text
    assert "sizes at or below it: d_sae 8." in text
    assert "every configuration counts as stable: 13 of 13" in text
    assert "Against the data-subspace baseline, 13 of 13 configurations are above it" in text
    assert "JumpReLU's L0 barely responds to its L0 coefficient" in text

    sweep = files[SWEEP]
    sweep["goldilocks"].update(zone=True, peak_d_sae=16)
    sweep["by_d_sae"]["16"]["best_ratio"] = 4.0
    sweep["by_d_sae"]["16"]["n_stable"] = 5
    sweep["rows"][0]["above_subspace"] = False
    jump = next(r for r in sweep["rows"] if r["config"] == "jumprelu-d16-l0c10")
    jump["l0"] = 12.0
    files["metrics/fourier.json"]["activation_effective_rank"] = 4.0
    m = metrics(files)
    g = rq1.decide(m)
    assert g.zone and not g.falling and not g.all_stable and g.low_rank_sizes == ()
    assert not g.subspace.all_above and len(g.subspace.above) == 12
    assert not g.jumprelu.flat
    text = words(rq1, m)
    assert "the SAEs):* **A Goldilocks zone.** " in text
    assert "It peaks at d_sae 16. " in text and "falls with every step" not in text
    assert "; every size tried is above it. " in text
    assert "most configurations count as stable: 11 of 13" in text
    assert "the picture changes: only 12 of 13 configurations" in text
    assert "JumpReLU's L0 changes with its L0 coefficient" in text


@pytest.mark.parametrize(
    ("up", "down", "verdict"),
    [
        (0.0, 0.05, "none_recovered"),
        (0.1, 0.5, "stabler_less"),
        (0.5, 0.1, "stabler_more"),
    ],
)
def test_rq3_coverage_of_the_stabler_sweep_configurations(
    files, metrics, up: float, down: float, verdict: str
) -> None:
    rows = [r for r in files[SWEEP]["rows"] if not r["skipped"]]
    for i, r in enumerate(rows):
        r["above_subspace"] = i % 2 == 0
        r["coverage"] = up if r["above_subspace"] else down
    m = metrics(files)
    s = rq3.decide(m).sweep
    assert s.verdict == verdict and len(s.above) == 7 and len(s.not_above) == 6
    assert rq3.SWEEP_TEXT[verdict] in words(rq3, m)


def test_rq3_most_stable_configuration_and_its_coverage(files, metrics) -> None:
    m = metrics(files)  # standard: highest ratio to isotropic and highest coverage (1.0)
    f = rq3.decide(m)
    assert (f.most_stable, f.most_stable_covers_most) == ("standard", True)
    assert "`standard`, also has the highest coverage" in words(rq3, m)
    files["metrics/recovery.json"]["standard"]["key_frequency_coverage"] = stats(0.1)
    m = metrics(files)
    f = rq3.decide(m)
    assert (f.most_stable, f.most_stable_covers_most) == ("standard", False)
    assert "`standard`, does **not** have the highest coverage" in words(rq3, m)


def test_rq4_groups_against_atoms_and_the_data_sample_reference(files, metrics) -> None:
    m = metrics(files)  # group overlap 0.9 [0.88, 0.92], atoms 0.67, data sample 0.9
    f = rq4.decide(m)
    topk = f.configs[0]
    assert topk.closer_between_seeds and topk.groups_conserved
    assert topk.data_sample_relation == "within" and topk.subspace.rank == "8"  # 99%: 7 dims
    assert f.explained == ["topk", "batchtopk", "standard"] and f.beyond == []
    geo = files["metrics/geometry.json"]
    cfg = geo["configs"]["topk"]
    cfg["groups"]["data_sample"]["group_overlap"] = 0.5
    cfg["groups"]["all"]["atom_match"] = stats(0.95)
    cfg["gram"]["distance_to_data_sample"]["mean"] = 0.01
    geo["activations"]["dims_for_variance"]["0.99"] = 20  # above every rank: the smallest
    m = metrics(files)
    f = rq4.decide(m)
    topk = f.configs[0]
    assert not topk.closer_between_seeds and not topk.groups_conserved
    assert topk.data_sample_relation == "above" and topk.subspace.rank == "4"
    assert f.beyond == ["topk"] and f.atoms_match == ["topk"]
    text = words(rq4, m)
    assert "(total variation), **not** clearly less than" in text
    assert "(groups **not** conserved more than atoms)" in text
    assert "for `topk` single live atoms match as well as the groups do" in text
    assert "the group overlap of `topk` exceeds the data-sample reference" in text
    assert "the rank-4 decoder subspaces" in text


@pytest.mark.parametrize(
    ("shape", "peak", "falls", "words_"),
    [
        (None, 4, True, "peaks early and then falls: maximum 0.200 at step 8"),  # the fake
        (
            [0.01 * j for j in range(8)],
            7,
            False,
            "rises to its final value: maximum 0.070 at step 64",
        ),
        # a peak before the end with the end above FALL x the peak still "rises"
        (
            [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.55],
            6,
            False,
            "rises to its final value: maximum 0.600 at step 32",
        ),
        (
            [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.45],
            6,
            True,
            "peaks early and then falls: maximum 0.600 at step 32",
        ),
    ],
)
def test_rq5_shared_fraction_peaks_then_falls_or_rises(
    files, metrics, shape, peak: int, falls: bool, words_: str
) -> None:
    """The fake's shared fraction peaks at checkpoint 4 (step 8) and ends near 0.02."""
    if shape is not None:
        cps = files["metrics/dynamics.json"]["configs"]["topk"]["checkpoints"]
        for cp, v in zip(cps, shape, strict=True):
            cp["stability"]["shared_fraction"] = stats(v, 0.001, None)
    m = metrics(files)
    g = rq5.decide(m).configs[0]
    assert g.shared == rq5.Shared(peak, falls) and g.settle_known and g.prev_step == "32"
    text = words(rq5, m)
    assert text.startswith("`topk`: PWMCC") and f"the shared fraction {words_}" in text


def test_rq6_predictors_by_their_ci_against_chance(files, metrics) -> None:
    m = metrics(files)
    f = rq6.decide(m)
    verdicts = {g.name: {p.prop: p.verdict for p in g.predictors} for g in f.configs}
    assert verdicts["topk"]["firing_frequency"] == "chance"  # 0.5 [0.45, 0.55]
    assert verdicts["topk"]["purity"] == "predictive"  # 0.8 [0.75, 0.85]
    assert verdicts["standard"]["purity"] == "below"  # 0.1 [0.05, 0.15]
    assert f.few == ["topk", "batchtopk"] and f.unit_decoder  # 8 and 28 shared latents
    text = words(rq6, m)
    assert "`topk`, `batchtopk` have very few shared latents, so their CIs are wide" in text
    assert "below chance (CI under it): purity 0.10 [0.05, 0.15]" in text
    for name, entry in files["metrics/predictors.json"]["configs"].items():
        entry["n_shared"] = 40 if name != "batchtopk" else 10
        entry["auc"]["decoder_norm"]["std"] = 0.01
    m = metrics(files)
    f = rq6.decide(m)
    assert f.few == ["batchtopk"] and not f.unit_decoder
    text = words(rq6, m)
    assert "`batchtopk` has very few shared latents, so its CIs are wide" in text
    assert "uninformative by construction" not in text


def test_sections_in_report_order() -> None:
    assert [t for t, _ in SECTIONS][:2] == ["Transformer and grokking", "Fourier ground truth"]
    assert [t.split()[0] for t, _ in QUESTIONS] == ["RQ1", "RQ2", "RQ3", "RQ4", "RQ5", "RQ6"]


# ----------------------------------------------------------------------------- controls

SYNTHETIC = "metrics/stability/synthetic.json"
CIRCLES = "metrics/stability/circles.json"
IDMAP = "metrics/identifiability.json"


def test_controls_follow_the_hand_made_controls(files, metrics) -> None:
    m = metrics(files)  # synthetic shared 0.875, circles 0.2 / 0.25, modular 0.02-0.12
    f = controls.decide(m)
    assert f.positive.name == "topk" and f.positive.works and f.positive.saelens.agree
    assert [n.unidentifiable for n in f.negatives] == [True, True]
    assert [n.live_vs_subspace for n in f.negatives] == ["above", "above"]  # 0.91 > 0.90
    assert f.map.sign == "positive" and f.map.threshold == ("headline", "threshold")
    assert [r.closer for r in f.modular] == ["negative"] * 3
    assert [r.reaches_threshold for r in f.modular] == [False] * 3  # 0.55-0.75 < 0.9
    text = words(controls, m)
    assert "the SAEs recover most of the planted features" in text
    assert "the two agree at the printed precision" in text
    assert "The seeds share few atoms where there is no dictionary to find" in text
    assert "on its own it is not evidence of learned features" in text
    assert "stabler cells recover more (CI above zero)" in text
    assert "Every cell with `live_pwmcc` of at least 0.900 (4 cells)" in text
    assert "closer to the negative control's than to the positive control's" in text
    assert "No modular configuration reaches the map's stability threshold" in text


def test_controls_decisions_flip_with_the_numbers(files, metrics) -> None:
    for entry in files[CIRCLES].values():  # circles share as much as the positive control
        entry["shared_fraction"] = stats(0.9)
        entry["live"]["subspace_live_pwmcc"] = stats(0.92, 0.01)  # overlaps [0.91, 0.95]
    syn = files[SYNTHETIC]["topk"]
    syn["ground_truth"]["recovered_fraction"] = stats(0.4, 0.02, None)
    syn["saelens_eval"]["max_mcc_difference"] = 0.01
    idmap = files[IDMAP]
    idmap["headline"].update(spearman_ci=[-0.2, 0.9], threshold=None, cells_above=0)
    modular = files[STABILITY]
    for i, entry in enumerate(modular.values()):
        entry["shared_fraction"] = stats(0.8 if i else 0.95)  # circles 0.9, synthetic 0.875
    m = metrics(files)
    f = controls.decide(m)
    assert not f.positive.works and f.positive.most_recovered is False
    assert not f.positive.saelens.agree
    assert [n.unidentifiable for n in f.negatives] == [False, False]
    assert [n.live_vs_subspace for n in f.negatives] == ["within", "within"]
    assert f.map.sign == "none" and f.map.threshold is None
    assert [r.closer for r in f.modular] == ["negative", "positive", "positive"]
    assert all(r.reaches_threshold is None for r in f.modular)
    text = words(controls, m)
    assert "recover **fewer than half** of the planted features" in text
    assert "the two **differ** beyond the printed precision" in text
    assert "The positive control does **not** show both" in text
    assert "share few atoms" not in text  # not called unidentifiable
    assert "the shared fraction does not set this domain apart" in text
    assert "not evidence of learned features" not in text
    assert "does **not** clearly go with recovery" in text
    assert "No stability level exists above which every cell reaches `mcc`" in text
    assert (
        "Closer to the negative control: `topk`; closer to the positive control: "
        "`batchtopk`, `standard`." in text
    )
    assert "stability threshold" not in text


def test_controls_pending_without_their_files_and_the_modular_part_optional(files, metrics) -> None:
    del files[STABILITY]
    text = words(controls, metrics(files))
    assert "metrics/stability/modular.json is not there yet" in text
    del files[IDMAP]
    c = Citer(metrics(files))
    out = _guarded(c, controls.section, BUILD)
    assert out == "*Pending: `metrics/identifiability.json is not there yet`.*\n" and not c.sources


def test_controls_section_before_the_first_sae_result() -> None:
    titles = [t for t, _ in SECTIONS]
    assert (
        titles.index("Controls: stability where the answer is known")
        == titles.index("Fourier ground truth") + 1
        < titles.index("SAE baseline")
    )


def test_controls_say_when_duplicated_live_atoms_inflate_live_pwmcc(files, metrics) -> None:
    """A modular configuration whose live atoms are mostly near-duplicates (fewer than half
    distinct) is named, and reaching the map's threshold is qualified for it."""
    modular = files[STABILITY]
    name = next(iter(modular))
    for i, entry in enumerate(modular.values()):
        entry["live"]["n_live"] = stats(500.0, 5.0)
        entry["live"]["distinct_live"] = stats(120.0 if i == 0 else 400.0, 3.0)
        entry["live"]["live_pwmcc"] = stats(0.99, 0.005)  # at the tiny map's threshold 0.9
    m = metrics(files)
    f = controls.decide(m)
    assert [r.duplicated for r in f.modular] == [True] + [False] * (len(f.modular) - 1)
    text = words(controls, m)
    assert f"`{name}`: fewer than half of the live atoms are distinct directions" in text
    assert f"(`{name}` only through duplicated atoms)" in text
    for entry in modular.values():
        entry["live"]["distinct_live"] = stats(400.0, 3.0)
    text = words(controls, metrics(files))
    assert "distinct directions (the rest are near-duplicates" not in text
    assert "only through duplicated atoms" not in text
