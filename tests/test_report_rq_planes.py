"""RQ3, RQ4 and RQ6 led by the plane measures (SCIENCE.md section 9): known answers of each
new decision on hand-made metric files (tests/test_paper.py's fakes, extended with the
``mlp.hook_post`` hook and plane metrics on the circles control), both branches of every
new verdict, the old numbers kept as a labelled secondary paragraph, and missing blocks
degrading to less text rather than an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paper.build import Build
from paper.cite import Citer
from paper.metrics import Metrics
from paper.report import _guarded, rq3, rq4, rq6
from paper.schema import Stat
from tests import test_report_sections as sections
from tests.paper_check import check_report
from tests.test_paper import fake_planes, stats, vstats, write_repo
from tests.test_report_sections import BUILD, words

files = sections.files  # the hand-made files and their reader: test_report_sections' fixtures
metrics = sections.metrics

STABILITY = "metrics/stability/modular.json"
MLP = "metrics/stability/modular_mlp.json"
CIRCLES = "metrics/stability/circles.json"
SYNTHETIC = "metrics/stability/synthetic.json"
IDMAP = "metrics/identifiability.json"
RESID = "`blocks.0.hook_resid_post`"
MLP_LABEL = "`blocks.0.mlp.hook_post`"


def with_hooks(files: dict) -> dict:
    """The fakes plus an mlp.hook_post file (the modular ``topk`` entry) and plane metrics on
    the circles control, whose atoms the shift null matches (nothing pinned there)."""
    files[MLP] = {"topk": json.loads(json.dumps(files[STABILITY]["topk"]))}
    for entry in files[CIRCLES].values():
        planes = fake_planes(0)
        live = entry["live"]
        planes["rotation_live_pwmcc"] = dict(live["live_pwmcc"])
        planes["rotation_live_shared_fraction"] = dict(live["live_shared_fraction"])
        entry["planes"] = planes
    return files


def entries(files: dict, *names: str):
    for name in names:
        yield from files[name].values()


def set_planes(files: dict, key: str, value: dict, *names: str) -> None:
    for entry in entries(files, *(names or (STABILITY, MLP, CIRCLES))):
        entry["planes"][key] = dict(value)


# ----------------------------------------------------------------------------- RQ3


def test_share_is_the_ci_against_one_half(files, metrics) -> None:
    entry = files[STABILITY]["topk"]["planes"]
    entry["assigned_fraction"] = vstats(0.6)  # [0.58, 0.62]
    entry["arc_fraction"] = vstats(0.4)  # [0.38, 0.42]
    entry["coverage"] = vstats(0.51)  # [0.49, 0.53]
    m = metrics(files)

    def at(key: str, ci: bool = True) -> Stat:
        p = ("topk", "planes", key)
        if not ci:
            return Stat(STABILITY, (*p, "mean"))
        return Stat(STABILITY, (*p, "mean"), (*p, "ci", 0), (*p, "ci", 1))

    assert rq3.share(m, at("assigned_fraction")) == "most"
    assert rq3.share(m, at("arc_fraction")) == "few"
    assert rq3.share(m, at("coverage")) == "neither"
    assert rq3.share(m, at("coverage", ci=False)) == "no_ci"
    assert rq3.share(m, None) == "no_ci"


def test_rq3_latents_recover_the_circles_as_arcs_while_atoms_mix_planes(files, metrics) -> None:
    with_hooks(files)
    set_planes(files, "assigned_fraction", vstats(0.0, 0.0))
    set_planes(files, "arc_fraction", vstats(0.95))
    m = metrics(files)
    f = rq3.decide(m)
    assert [d.label for d in f.domains] == [RESID, MLP_LABEL, "circles control"]
    assert {(d.atoms, d.latents) for d in f.domains} == {("few", "most")}
    assert f.functional
    text = words(rq3, m)
    assert text.startswith("**Planes.**")
    assert "the SAEs recover the circles functionally, as arcs" in text
    assert f"{MLP_LABEL}: atoms in one plane 0.000 (random 0.010), arc latents 0.950" in text
    assert "at least 90% of their norm² in it" in text

    # one hook whose atoms do lie in planes: no functional-only verdict, per-domain words
    set_planes(files, "assigned_fraction", vstats(0.7), STABILITY)
    m = metrics(files)
    f = rq3.decide(m)
    assert [d.atoms for d in f.domains] == ["most", "few", "few"] and not f.functional
    text = words(rq3, m)
    assert "functionally" not in text
    assert f"{RESID}: most live atoms lie in one plane, most live latents fire on one arc" in text
    assert (
        f"{MLP_LABEL}: fewer than half of the live atoms lie in one plane, most live latents"
        in text
    )


def test_rq3_configurations_that_disagree_are_mixed(files, metrics) -> None:
    with_hooks(files)
    set_planes(files, "assigned_fraction", vstats(0.0, 0.0))
    files[STABILITY]["standard"]["planes"]["assigned_fraction"] = vstats(0.5)  # CI holds half
    files[STABILITY]["batchtopk"]["planes"]["arc_fraction"] = vstats(0.1)
    m = metrics(files)
    resid = rq3.decide(m).domains[0]
    assert (resid.atoms, resid.latents) == ("mixed", "mixed")
    text = words(rq3, m)
    assert rq3.ATOMS_TEXT["mixed"] in text and rq3.ARCS_TEXT["mixed"] in text
    files[STABILITY]["batchtopk"]["planes"]["arc_fraction"] = vstats(0.7)
    for entry in files[STABILITY].values():
        entry["planes"]["assigned_fraction"] = vstats(0.5)
    resid = rq3.decide(metrics(files)).domains[0]
    assert (resid.atoms, resid.latents) == ("neither", "most")


def test_rq3_atoms_on_neurons_at_mlp_hook_post(files, metrics) -> None:
    m = metrics(files)  # no mlp.hook_post file: no neuron paragraph
    assert rq3.decide(m).neurons is None and "**Neurons.**" not in words(rq3, m)

    with_hooks(files)  # aligned 0.2 [0.18, 0.22] against 0.0 [0.0, 0.0]
    m = metrics(files)
    n = rq3.decide(m).neurons
    assert n.label == MLP_LABEL and [r.on_neurons for r in n.rows] == ["yes"]
    assert n.none_aligned == (False,)
    text = words(rq3, m)
    assert (
        "`topk` 0.200 [0.180, 0.220] (random atoms in the data subspace 0.000 [0.000, 0.000]): "
        "more often than random atoms (CI clear above the baseline's)" in text
    )
    assert "no live atom of any seed lies on one neuron" not in text

    files[MLP]["topk"]["neurons"]["aligned_fraction"] = vstats(0.0, 0.0)
    m = metrics(files)
    n = rq3.decide(m).neurons
    assert [r.on_neurons for r in n.rows] == ["no"] and n.none_aligned == (True,)
    text = words(rq3, m)
    assert "**not** more often than random atoms; no live atom of any seed lies on one" in text


def test_rq3_stability_and_recovery_from_the_map_and_the_controls(files, metrics) -> None:
    m = metrics(files)
    f = rq3.decide(m)
    assert f.map.sign == "positive" and f.positive.works
    assert [n.unidentifiable for n in f.negatives] == [True, True]
    text = words(rq3, m)
    assert "across cells 0.71 [0.20, 1.00]: stabler cells recover more (CI above zero)" in text
    assert "Every cell with `live_pwmcc` of at least 0.900 (4 cells) has `mcc`" in text
    assert "stability and recovery together" in text
    assert "shared fraction 0.200–0.250 (positive control 0.875), far below" in text

    files[IDMAP]["headline"].update(spearman_ci=[-0.2, 0.9], threshold=None, cells_above=0)
    files[SYNTHETIC]["topk"]["ground_truth"]["recovered_fraction"] = vstats(0.4)
    for entry in files[CIRCLES].values():
        entry["shared_fraction"] = stats(0.9)
    m = metrics(files)
    f = rq3.decide(m)
    assert f.map.sign == "none" and f.map.threshold is None and not f.positive.works
    assert [n.unidentifiable for n in f.negatives] == [False, False]
    text = words(rq3, m)
    assert "does **not** clearly go with recovery" in text
    assert "No stability level makes every cell reach `mcc` of 0.90" in text
    assert "it does **not** show both stability above the isotropic baseline" in text
    assert "in `topk`, `topk-d64` **not** clearly below the positive control's" in text
    assert "far below" not in text


def test_rq3_old_numbers_follow_labelled_as_firing_density(files, metrics) -> None:
    m = metrics(files)
    text = words(rq3, m)
    lead, old = text.split("*All atoms (secondary: SCIENCE.md section 8", 1)
    assert "**Planes.**" in lead and "**Stability and recovery.**" in lead
    assert "measures how densely a latent fires, not recovery):* Baseline SAEs:" in old
    assert "The most stable baseline configuration, `standard`, also has the highest" in old
    assert "coverage 0.500 [0.480, 0.520]" not in lead


def test_rq3_without_its_metric_files(files, metrics) -> None:
    for entry in files[STABILITY].values():
        del entry["planes"]
    m = metrics(files)  # no plane metrics anywhere: the controls lead, the old part follows
    f = rq3.decide(m)
    assert f.domains == () and f.rows
    text = words(rq3, m)
    assert text.startswith("**Stability and recovery.**") and "*All atoms" in text
    for name in (STABILITY, "metrics/recovery.json", IDMAP, SYNTHETIC):
        del files[name]
    c = Citer(metrics(files))
    out = _guarded(c, rq3.section, BUILD)
    assert out.startswith("*Pending: `metrics/recovery.json") and not c.sources


# ----------------------------------------------------------------------------- RQ4


def test_rq4_atoms_against_the_shift_null_all_branches(files, metrics) -> None:
    with_hooks(files)
    # fake: live PWMCC 0.55 / 0.65 / 0.75 against the null 0.70 / 0.75 / 0.80 (below);
    # live shared 0.03 / 0.08 / 0.13 against 0.01 [0.0, 0.02]: within, above, above
    files[STABILITY]["standard"]["planes"]["rotation_live_pwmcc"] = stats(0.5)
    m = metrics(files)
    f = rq4.decide(m)
    resid = f.hooks[0]
    assert resid.label == RESID
    assert [g.pinned for g in resid.configs] == ["no", "shared_only", "yes"]
    text = words(rq4, m)
    assert (
        "`topk`: live PWMCC 0.550 [0.530, 0.570] against the shift null 0.700 [0.680, 0.720] "
        "(below it), live shared fraction 0.030 [0.010, 0.050] against 0.010 [0.000, 0.020] "
        "(not distinguishable from it): atoms **not** pinned beyond the symmetry;" in text
    )
    assert f"atoms pinned beyond the symmetry at {RESID} (`standard`)" in text
    assert f"but not the dictionary as a whole, at {RESID} (`batchtopk`);" in text
    assert (
        "atoms agreeing no more than shifted copies of one solution would at "
        f"{RESID} (`topk`), {MLP_LABEL} (`topk`);" in text
    )

    entry = files[STABILITY]["topk"]
    entry["live"]["live_shared_fraction"] = stats(0.01, 0.01)
    entry["planes"]["rotation_live_pwmcc"] = stats(0.3)  # live PWMCC above it alone
    files[STABILITY]["batchtopk"]["live"]["live_pwmcc"]["ci"] = None
    files[STABILITY]["standard"]["planes"]["rotation_live_pwmcc"] = stats(0.9)
    m = metrics(files)
    f = rq4.decide(m)
    assert [g.pinned for g in f.hooks[0].configs] == ["pwmcc_only", "undetermined", "shared_only"]
    text = words(rq4, m)
    assert "at no hook are the atoms pinned beyond the symmetry by both measures" in text
    assert f"the dictionary as a whole pinned, but no more atoms shared one-to-one, at {RESID}" in (
        text
    )
    assert rq4.PINNED_TEXT["undetermined"] in text


def test_rq4_partitions_against_random_atoms(files, metrics) -> None:
    m = metrics(files)  # partition AMI 0.4 [0.38, 0.42] against 0.5 [0.45, 0.55]
    f = rq4.decide(m)
    assert [g.partition[2] for g in f.hooks[0].configs] == ["below"] * 3
    assert f.partitions_above == [] and f.control_partitions is None  # no circles planes
    text = words(rq4, m)
    assert rq4.PARTITION_TEXT["below"] in text
    assert f"partitions **less** alike than random atoms give at {RESID} (`topk`," in text
    assert "partitions more alike" not in text

    files[STABILITY]["standard"]["planes"]["partition_ami"] = stats(0.7)
    files[STABILITY]["batchtopk"]["planes"]["partition_ami"] = stats(0.5)
    with_hooks(files)
    m = metrics(files)
    f = rq4.decide(m)
    assert [g.partition[2] for g in f.hooks[0].configs] == ["below", "within", "above"]
    assert f.control_partitions == "below"
    text = words(rq4, m)
    assert rq4.PARTITION_TEXT["above"] in text and rq4.PARTITION_TEXT["within"] in text
    assert f"partitions more alike than random atoms give at {RESID} (`standard`)" in text
    assert "in the circles control, with nothing to identify, partition AMI is below" in text


def test_rq4_planes_empty_when_no_atom_lies_in_one(files, metrics) -> None:
    m = metrics(files)  # 0.6 of live atoms in a plane; coverage and agreement above baselines
    f = rq4.decide(m)
    assert [g.planes for g in f.hooks[0].configs] == ["yes"] * 3 and not f.hooks[0].empty
    text = words(rq4, m)
    assert (
        "plane coverage 0.900 [0.880, 0.920] (baseline 0.050 [0.040, 0.060]), agreement "
        "0.950 [0.930, 0.970] (baseline 0.100 [0.050, 0.150]): planes covered and agreed on" in text
    )
    assert "are empty at" not in text

    files[STABILITY]["topk"]["planes"]["plane_agreement"] = stats(0.1)
    for name in ("batchtopk", "standard"):
        files[STABILITY][name]["planes"]["assigned_fraction"] = vstats(0.0, 0.0)
    m = metrics(files)
    f = rq4.decide(m)
    assert [g.planes for g in f.hooks[0].configs] == ["no", "empty", "empty"]
    text = words(rq4, m)
    assert rq4.PLANES_TEXT["no"] in text and rq4.PLANES_TEXT["empty"] in text
    assert "are empty at" not in text  # not every configuration

    files[STABILITY]["topk"]["planes"]["assigned_fraction"] = vstats(0.0, 0.0)
    m = metrics(files)
    assert rq4.decide(m).hooks[0].empty
    assert f"plane coverage and agreement are empty at {RESID}: no live atom" in words(rq4, m)


def test_rq4_neurons_shared_only_at_mlp_hook_post(files, metrics) -> None:
    with_hooks(files)
    m = metrics(files)
    f = rq4.decide(m)
    assert [g.neurons for g in f.hooks[0].configs] == [None] * 3
    assert [g.neurons for g in f.hooks[1].configs] == ["shared"]
    text = words(rq4, m)
    resid, mlp = text.split(f"**{RESID}**", 1)[1].split(f"**{MLP_LABEL}**", 1)
    assert "neurons" not in resid
    assert "neurons shared by two seeds (Jaccard) 0.400 [0.380, 0.420]" in mlp

    neurons = files[MLP]["topk"]["neurons"]
    neurons["shared_neurons"] = {**stats(0.0), "mean": None, "ci": None}
    neurons["neurons_found"] = vstats(0.0, 0.0)
    m = metrics(files)
    assert rq4.decide(m).hooks[1].configs[0].neurons == "none_aligned"
    assert "no neurons shared: no live atom of any seed lies on one neuron" in words(rq4, m)
    neurons["neurons_found"] = vstats(3.0)
    m = metrics(files)
    assert rq4.decide(m).hooks[1].configs[0].neurons == "not_computed"


def test_rq4_a_control_that_beats_the_shift_null_qualifies_the_claim(files, metrics) -> None:
    with_hooks(files)  # the circles control's atoms: exactly at the null
    m = metrics(files)
    f = rq4.decide(m)
    assert [g.pinned for g in f.hooks[-1].configs] == ["no", "no"]
    assert f.control_beats_null == []
    assert "the circles control beats the shift null too" not in words(rq4, m)
    files[CIRCLES]["topk-d64"]["planes"]["rotation_live_shared_fraction"] = stats(0.0, 0.0)
    m = metrics(files)
    f = rq4.decide(m)
    assert f.control_beats_null == ["topk-d64"]
    assert "but the circles control beats the shift null too (`topk-d64`)" in words(rq4, m)


def test_rq4_leads_with_the_planes_and_keeps_geometry_secondary(files, metrics) -> None:
    m = metrics(files)
    text = words(rq4, m)
    lead, old = text.split("*All atoms (secondary: SCIENCE.md section 8", 1)
    assert lead.startswith("What is conserved when single atoms are not")
    assert "The activations' effective rank is 8.5 of 32 dimensions" in lead
    assert "Gram spectra differ between seeds" in old and "Gram spectra" not in lead

    del files["metrics/geometry.json"]
    m = metrics(files)
    f = rq4.decide(m)
    assert f.configs == () and not f.effective_rank
    text = words(rq4, m)
    assert "*All atoms" not in text and "effective rank" not in text and f"**{RESID}**" in text

    for entry in files[STABILITY].values():
        del entry["planes"]
    c = Citer(metrics(files))
    out = _guarded(c, rq4.section, BUILD)
    assert out.startswith("*Pending: `metrics/geometry.json") and not c.sources


# ----------------------------------------------------------------------------- RQ6


def test_rq6_sharing_against_the_shift_null_before_the_aucs(files, metrics) -> None:
    m = metrics(files)  # live shared 0.03 / 0.08 / 0.13 against 0.01 [0.0, 0.02]
    f = rq6.decide(m)
    assert [s.verdict for s in f.sharing] == ["within", "above", "above"]
    assert f.not_above_null == ["topk"] and f.above_null == ["batchtopk", "standard"]
    text = words(rq6, m)
    assert text.startswith("**Sharing in context.**")
    assert text.index("**Sharing in context.**") < text.index("*Predictors (live latents")
    assert "`topk` is **not** above the shift null: its seeds share no more latents" in text
    assert "read its AUCs below with that caveat" in text
    assert "`batchtopk`, `standard` share more than the shift null" in text

    for entry in files[STABILITY].values():
        entry["planes"]["rotation_live_shared_fraction"] = stats(0.005, 0.002)
    m = metrics(files)
    f = rq6.decide(m)
    assert f.not_above_null == [] and f.above_null == ["topk", "batchtopk", "standard"]
    text = words(rq6, m)
    assert "caveat" not in text and "**not** above the shift null" not in text

    for entry in files[STABILITY].values():
        entry["planes"]["rotation_live_shared_fraction"] = stats(0.5)
    m = metrics(files)
    assert [s.verdict for s in rq6.decide(m).sharing] == ["below"] * 3
    text = words(rq6, m)
    assert "`topk`, `batchtopk`, `standard` are **not** above the shift null" in text
    assert "read their AUCs below with that caveat" in text and "share more than" not in text


def test_rq6_circles_control_above_its_null_qualifies_sharing(files, metrics) -> None:
    with_hooks(files)  # the control at its null
    m = metrics(files)
    assert rq6.decide(m).control_above_null == []
    assert "the circles control, where nothing is identifiable, does too" not in words(rq6, m)
    files[CIRCLES]["topk"]["planes"]["rotation_live_shared_fraction"] = stats(0.0, 0.0)
    m = metrics(files)
    assert rq6.decide(m).control_above_null == ["topk"]
    assert (
        "although the circles control, where nothing is identifiable, does too (`topk` "
        "0.280 [0.260, 0.300] against 0.000 [0.000, 0.000])" in words(rq6, m)
    )


def test_rq6_without_the_shift_null_and_the_purity_note(files, metrics) -> None:
    m = metrics(files)  # purity predictive for topk only
    assert rq6.decide(m).purity_predictive == ["topk"]
    assert "its AUC above chance for `topk` does not show" in words(rq6, m)
    for entry in files[STABILITY].values():
        del entry["planes"]
    for entry in files["metrics/predictors.json"]["configs"].values():
        entry["auc"]["purity"] = {**vstats(0.5, 0.05), "pooled": 0.5}
    m = metrics(files)
    f = rq6.decide(m)
    assert f.sharing == () and f.purity_predictive == []
    text = words(rq6, m)
    assert text.startswith("*Predictors (live latents only):*")
    assert "Sharing in context" not in text and "Purity, a test" not in text


# ----------------------------------------------------------------------------- citations


@pytest.mark.parametrize("extended", [False, True])
def test_every_number_of_the_three_answers_is_cited(files, tmp_path: Path, extended) -> None:
    """The three answers alone as a report: every number cited and equal to its source."""
    if extended:
        with_hooks(files)
        files[MLP]["topk"]["neurons"]["aligned_fraction"] = vstats(0.0, 0.0)
    root = write_repo(tmp_path / "repo", files)
    c = Citer(Metrics(root))
    build = Build(rendered=BUILD.rendered)
    text = "".join(_guarded(c, mod.section, build) + "\n" for mod in (rq3, rq4, rq6))
    assert "*Pending" not in text
    (root / "paper").mkdir()
    (root / "paper/report.md").write_text(text)
    build.sources = c.sources
    (root / "paper/report_sources.json").write_text(build.sources_json())
    assert check_report(root) == len(c.sources) > 0
