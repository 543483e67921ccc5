"""RQ1 and RQ2 lead with the sweep's live atoms beside the shift null: known answers of
their decisions and wording on the hand-made sweep (tests/test_paper.py's fake), with one
decision flipped per case."""

from __future__ import annotations

from paper.report import rq1, rq2
from tests.test_report_sections import SWEEP, files, metrics, words  # noqa: F401


def test_rq1_live_answer_lengths_and_learning_rate(files, metrics) -> None:  # noqa: F811
    # fake: topk at d_sae 16 above the null (3 of 7 there), nothing at d_sae 8; live PWMCC
    # 0.80 after 2 epochs, 0.70 at convergence, the null 0.79 then 0.69; one rate
    live = rq1.decide(metrics(files)).live
    assert (live.zone, live.any_above, live.falls, live.null_falls, live.first_above) == (
        False,
        True,
        True,
        True,
        False,
    )
    assert live.rates == (("0.001", 0),)
    text = words(rq1, metrics(files))
    assert text.startswith(
        "**No Goldilocks zone beyond the symmetry.** Live atoms beat the shift null at some "
        "sizes, but not in an interior band."
    )
    assert "d_sae 8: 0 of 6 (largest live PWMCC minus null +0.000" in text
    assert "d_sae 16: 3 of 7 (largest live PWMCC minus null +0.050, `topk-d16-k8`)" in text
    assert (
        "after at most 2 epochs: live PWMCC 0.800 against a null of 0.790, 0 of 13 above it"
    ) in text
    assert "at convergence: live PWMCC 0.700 against a null of 0.690, 2 of 13 above it" in text
    assert "Live PWMCC falls as training goes on, and the shift null falls with it. " in text
    assert "Even at the shortest length no configuration is above the null" in text
    assert "One learning rate in the default grid (0.001, " in text
    assert text.index("beyond the symmetry") < text.index("*All atoms (secondary")

    sweep = files[SWEEP]
    sweep["goldilocks_live"]["zone"] = True
    sweep["by_length"][0]["live_pwmcc"] = 0.6  # rises with training
    sweep["by_length"][0]["n_above_shift_null"] = 1
    sweep["lr"] = [0.001, 0.003]
    sweep["by_lr"]["0.003"] = {**sweep["by_lr"]["0.001"], "n_above_shift_null": 0}
    text = words(rq1, metrics(files))
    assert text.startswith("**A Goldilocks band beyond the symmetry.** ")
    assert "Live PWMCC does not fall as training goes on, while the shift null does. " in text
    assert "Even at the shortest length" not in text
    assert "Learning rate: 0.001: 2 of 13 above the null" in text
    assert "; 0.003: 0 of 13 above the null" in text and "One learning rate" not in text

    sweep["goldilocks_live"].update(zone=False, sizes_above=[])
    text = words(rq1, metrics(files))
    assert text.startswith(
        "**No Goldilocks zone: at no size are the atoms pinned beyond the symmetry.**"
    )


def test_rq2_live_leader_and_matched_l0(files, metrics) -> None:  # noqa: F811
    live = rq2.decide(metrics(files)).live
    assert live.leader == "topk"
    counts = {a.architecture: (len(a.above), len(a.rows)) for a in live.archs}
    assert counts == {"jumprelu": (0, 4), "standard": (0, 4), "topk": (3, 5)}
    # the one matched-L0 comparison (d_sae 8) ties at excess 0: nobody leads it
    assert len(live.matched) == 1 and all(not r for r in live.matched_excess.values())
    text = words(rq2, metrics(files))
    assert "topk: 3 of 5 (mean live PWMCC minus null +0.030)" in text
    assert "**topk** has the most. " in text
    assert "At matched L0 (1 comparisons), the larger live PWMCC minus null: jumprelu in 0" in text
    assert text.index("has the most") < text.index("*All atoms (secondary")

    for row in files[SWEEP]["rows"]:  # standard's d_sae 8 sparse level leads at matched L0
        if row.get("config") == "standard-d8-l1c3":
            row["live_excess"] = 0.02
        if not row["skipped"]:
            row["above_shift_null"] = False
    live = rq2.decide(metrics(files)).live
    assert live.leader is None and len(live.matched_excess["standard"]) == 1
    text = words(rq2, metrics(files))
    assert "**No architecture stands out**: none has a configuration above the null. " in text
    assert "standard in 1" in text


def test_rq5_converged_reconstruction_and_moving_atoms(files, metrics) -> None:  # noqa: F811
    from paper.report import rq5

    saes = files["metrics/saes/modular.json"]["saes"]
    for e in saes.values():  # every seed converged; topk's atoms still move, standard's not
        e["training"].update(
            epochs_run=40 if e["config"] == "topk" else 90,
            converged=True,
            atom_drift=0.07 if e["config"] == "topk" else 0.002,
        )
    f = rq5.decide(metrics(files))
    assert {g.name: g.moving for g in f.configs} == {"topk": True, "standard": False}
    text = words(rq5, metrics(files))
    assert text.startswith("**Converged reconstruction, moving atoms.** ")
    assert "`topk`: 3 of 3 seeds met the explained-variance criterion (epochs 40–40), atom " in text
    assert "drift at the stop 0.070 (the reconstruction has converged, the atoms have not)" in text
    assert "drift at the stop 0.002 (the atoms have settled with the reconstruction)" in text
    assert "the runs have not converged to a fixed dictionary" in text  # 2% settled

    for e in saes.values():
        e["training"]["atom_drift"] = 0.001
    dyn = files["metrics/dynamics.json"]
    for cfg in dyn["configs"].values():  # most latents settled by the last-but-one step
        settle = cfg["settle"]["live"]["fraction_settled_by_step"]
        for step in settle:
            settle[step] = 0.9
    text = words(rq5, metrics(files))
    assert text.startswith("**Converged.** ")
    assert "not converged to a fixed dictionary" not in text


def test_rq5_without_a_recorded_drift_has_no_convergence_lead(files, metrics) -> None:  # noqa: F811
    from paper.report import rq5

    text = words(rq5, metrics(files))
    assert text.startswith("`topk`: PWMCC between seeds")
