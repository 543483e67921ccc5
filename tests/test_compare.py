"""``husai compare`` and :mod:`husai.compare` against known answers: permuted, sign-flipped,
nested and random dictionaries; our checkpoints (the stability stages' own numbers) and
SAEs SAELens made itself; and the one-line errors."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from husai.baselines import isotropic_pwmcc_expectation
from husai.compare import SAEAtoms, compare, compare_pair, isotropic_reference
from husai.errors import HusaiError
from stages.cli import app


def unit(n: int, d: int, seed: int) -> torch.Tensor:
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    return x / x.norm(dim=1, keepdim=True)


def sae(name: str, n: int = 24, d: int = 16, seed: int = 0) -> SAEAtoms:
    return SAEAtoms(name, unit(n, d, seed), unit(n, d, seed + 100))


def test_a_permuted_copy_agrees_fully_and_the_matching_is_the_permutation() -> None:
    a = sae("a")
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(3))
    b = SAEAtoms("b", a.decoder[perm], a.encoder[perm])
    p = compare_pair(a, b, ranks=(4, 8))
    for key in ("pwmcc", "pwmcc_ab", "pwmcc_ba", "hungarian_mcc", "shared_fraction"):
        assert p[key] == pytest.approx(1.0), key
    assert p["subspace_overlap"]["8"] == pytest.approx(1.0)
    inverse = torch.argsort(perm)  # A's latent i is B's latent inverse[i]
    assert [(m["a"], m["b"]) for m in p["matching"]] == [(i, int(inverse[i])) for i in range(24)]
    assert all(m["shared"] and m["encoder_cos"] == pytest.approx(1.0) for m in p["matching"])


def test_sign_flips_count_under_the_absolute_cosine_and_not_under_the_signed() -> None:
    a = sae("a")
    b = SAEAtoms("b", -a.decoder, -a.encoder)
    assert compare_pair(a, b)["pwmcc"] == pytest.approx(1.0)
    signed = compare_pair(a, b, absolute=False)
    assert signed["pwmcc"] < 0.9 and signed["shared_fraction"] == 0.0


def test_different_widths_agree_one_way() -> None:
    """B holds A's atoms and as many random ones: every atom of A has its copy in B
    (PWMCC A->B 1), half of B's atoms have none (B->A below 1); the min(d_sae) matched
    pairs are the copies."""
    a = sae("a", n=12)
    b = SAEAtoms(
        "b", torch.cat([a.decoder, unit(12, 16, 7)]), torch.cat([a.encoder, unit(12, 16, 8)])
    )
    p = compare_pair(a, b)
    assert p["pwmcc_ab"] == pytest.approx(1.0) and p["pwmcc_ba"] < 0.9
    assert p["pwmcc"] == pytest.approx((p["pwmcc_ab"] + p["pwmcc_ba"]) / 2)
    assert p["hungarian_mcc"] == pytest.approx(1.0) and p["shared_fraction"] == pytest.approx(1.0)
    assert [m["b"] for m in p["matching"]] == list(range(12))


def test_random_saes_sit_at_the_isotropic_reference_and_it_is_seeded() -> None:
    saes = [sae(f"s{i}", n=64, d=32, seed=10 * i) for i in range(3)]
    out = compare(saes, n_boot=200)
    expected = isotropic_pwmcc_expectation(64, 32)
    for p in out["pairs"]:
        assert p["isotropic"]["pwmcc"] == pytest.approx(expected, abs=0.03)
        assert p["pwmcc"] == pytest.approx(expected, abs=0.03)
    s = out["summary"]["pwmcc"]
    assert s["trained"]["n_seeds"] == 3 and s["trained"]["ci"] is not None
    assert s["trained"]["mean"] == pytest.approx(sum(p["pwmcc"] for p in out["pairs"]) / 3)
    again = compare(saes, n_boot=200)
    assert again == out  # seeded: the same result twice
    other = compare(saes, n_boot=200, seed=5)
    assert other["pairs"][0]["isotropic"] != out["pairs"][0]["isotropic"]
    assert compare(saes[:2], matching=False)["summary"] is None


@pytest.mark.parametrize(
    ("saes", "message"),
    [
        ([sae("a")], "at least two SAEs"),
        ([sae("a"), sae("a", seed=1)], "names must be distinct"),
        ([sae("a"), sae("b", d=8)], "same activations (d_in), got a: 16, b: 8"),
    ],
)
def test_compare_refuses_with_one_line(saes, message) -> None:
    with pytest.raises(HusaiError, match=None) as info:
        compare(saes)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_sae_atoms_check_their_shapes() -> None:
    with pytest.raises(HusaiError, match="differ in shape"):
        SAEAtoms("x", unit(4, 3, 0), unit(5, 3, 0))
    with pytest.raises(HusaiError, match="transpose shape"):
        SAEAtoms.from_weights("x", torch.zeros(4, 3), torch.zeros(4, 3))
    bad = unit(4, 3, 0)
    bad[0, 0] = float("nan")
    with pytest.raises(HusaiError, match="NaN"):
        SAEAtoms("x", bad, unit(4, 3, 0))


# ----------------------------------------------------------------------------- the command


def write_ours(folder: Path, with_x: bool = False):
    """Three seeds of a small trained TopK SAE as SAELens folders (the saes stage's writer)."""
    from husai.sae import SAEConfig, train_saes
    from stages._artifacts import sae_files

    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 16, generator=g) @ torch.randn(16, 16, generator=g)
    config = SAEConfig(architecture="topk", d_in=16, d_sae=32, k=4, epochs=2, batch_size=64)
    trained, _ = train_saes(config, x, [1, 2, 3])
    for name, data in sae_files(trained, "").items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return (trained, x) if with_x else trained


def run(*args: str):
    return CliRunner().invoke(app, ["compare", *args])


def test_our_checkpoints_give_the_stability_numbers(tmp_path) -> None:
    from husai.analysis import AnalysisOptions, stability_summary

    trained = write_ours(tmp_path)
    out = tmp_path / "out.json"
    seeds = [str(tmp_path / f"seed{s}") for s in (1, 2, 3)]
    r = run(*seeds, "--json", str(out))
    assert r.exit_code == 0, r.output
    result = json.loads(out.read_text())
    st = stability_summary(trained, AnalysisOptions(n_boot=50))
    pairs = [(0, 1), (0, 2), (1, 2)]
    for p, (i, j) in zip(result["pairs"], pairs, strict=True):
        assert p["pwmcc"] == pytest.approx(st["pair_pwmcc"][i][j], abs=1e-6)
        assert (p["a"], p["b"]) == (seeds[i], seeds[j])
    assert result["summary"]["hungarian_mcc"]["trained"]["mean"] == pytest.approx(
        st["hungarian_mcc"]["mean"], abs=1e-6
    )
    assert result["summary"]["shared_fraction"]["trained"]["mean"] == pytest.approx(
        st["shared_fraction"]["mean"], abs=1e-6
    )
    prov = result["provenance"]
    assert set(prov["files"]) == {
        f"{s}/{f}" for s in seeds for f in ("cfg.json", "sae_weights.safetensors")
    }
    assert all(len(h) == 64 for h in prov["files"].values())
    assert {"husai", "torch", "sae_lens", "scipy", "numpy"} <= set(prov["versions"])
    assert result["schema_version"] == 1 and result["options"]["cosine"] == "absolute"
    assert len(result["pairs"][0]["matching"]) == 32
    assert "PWMCC" in r.output and "mean over pairs" in r.output


def test_saes_saelens_made_of_different_widths_sit_at_the_isotropic_level(tmp_path) -> None:
    from sae_lens import StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        StandardSAE(StandardSAEConfig(d_in=64, d_sae=128)).save_model(tmp_path / "a")
        TopKSAE(TopKSAEConfig(d_in=64, d_sae=256, k=8)).save_model(tmp_path / "b")
    out = tmp_path / "o.json"
    r = run(str(tmp_path / "a"), str(tmp_path / "b"), "--json", str(out))
    assert r.exit_code == 0, r.output
    p = json.loads(out.read_text())["pairs"][0]
    assert p["pwmcc"] == pytest.approx(p["isotropic"]["pwmcc"], abs=0.03)
    assert p["pwmcc_ab"] > p["pwmcc_ba"]  # the narrower one finds closer partners
    assert len(p["matching"]) == 128


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_bad_inputs_are_one_line_errors(tmp_path) -> None:
    from sae_lens import StandardSAE, StandardSAEConfig

    write_ours(tmp_path)
    ours = str(tmp_path / "seed1")
    line = one_line_error(run(ours, str(tmp_path / "missing")))
    assert line.endswith("missing: no such file or folder")
    (tmp_path / "empty").mkdir()
    assert "not an SAELens SAE folder" in one_line_error(run(ours, str(tmp_path / "empty")))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "cfg.json").write_text("{}")
    assert "SAELens cannot load it" in one_line_error(run(ours, str(tmp_path / "broken")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        StandardSAE(StandardSAEConfig(d_in=8, d_sae=16)).save_model(tmp_path / "narrow")
    line = one_line_error(run(ours, str(tmp_path / "narrow")))
    assert "same activations (d_in)" in line and ": 16, " in line and ": 8" in line
    assert "at least two" in one_line_error(run(ours))
    assert "--threshold = 1.5" in one_line_error(run(ours, ours, "--threshold", "1.5"))
    # a failure after loading (d_in) writes no --json file; a directory is no --json target
    out = tmp_path / "o.json"
    one_line_error(run(ours, str(tmp_path / "narrow"), "--json", str(out)))
    assert not out.exists()
    line = one_line_error(run(ours, str(tmp_path / "seed2"), "--json", str(tmp_path)))
    assert line.endswith("not a file path that can be written")


def test_live_numbers_from_activations_are_the_stability_stages(tmp_path) -> None:
    import numpy as np
    from safetensors.torch import save_file

    from husai.groundtruth import live_stability, sae_live_masks

    trained, x = write_ours(tmp_path, with_x=True)
    seeds = [str(tmp_path / f"seed{s}") for s in (1, 2, 3)]
    np.save(tmp_path / "acts.npy", x.numpy())
    out = tmp_path / "o.json"
    r = run(*seeds, "--activations", str(tmp_path / "acts.npy"), "--json", str(out))
    assert r.exit_code == 0, r.output
    result = json.loads(out.read_text())
    lives = sae_live_masks(trained, x)
    dec, enc = trained.decoder_atoms(), trained.encoder_atoms()
    want = live_stability(
        [dec[i] for i in range(3)], [enc[i] for i in range(3)], lives, x, [0, 1, 2]
    )
    for key in ("live_pwmcc", "live_shared_fraction", "subspace_live_pwmcc", "data_live_pwmcc"):
        assert result["live"][key]["mean"] == pytest.approx(want[key]["mean"], abs=1e-6), key
    assert [s["n_live"] for s in result["saes"]] == [int(m.sum()) for m in lives]
    assert [s["n_dead"] for s in result["saes"]] == [32 - int(m.sum()) for m in lives]
    assert result["options"]["live_cosine"] == "absolute"
    assert str(tmp_path / "acts.npy") in result["provenance"]["files"]
    assert "live latents only" in r.output
    # the same rows as safetensors, named x
    save_file({"x": x.contiguous()}, str(tmp_path / "acts.safetensors"))
    out2 = tmp_path / "o2.json"
    r = run(*seeds, "--activations", str(tmp_path / "acts.safetensors"), "--json", str(out2))
    assert r.exit_code == 0, r.output
    assert json.loads(out2.read_text())["live"] == result["live"]


def test_bad_activations_are_one_line_errors(tmp_path) -> None:
    import numpy as np

    write_ours(tmp_path)
    seeds = [str(tmp_path / f"seed{s}") for s in (1, 2)]
    np.save(tmp_path / "narrow.npy", np.zeros((10, 8), dtype=np.float32))
    line = one_line_error(run(*seeds, "--activations", str(tmp_path / "narrow.npy")))
    assert "activations of shape (10, 8), expected [N >= 2, 16]" in line
    line = one_line_error(run(*seeds, "--activations", str(tmp_path / "none.npy")))
    assert line.endswith("none.npy: no such file")
    (tmp_path / "acts.csv").write_text("1,2")
    line = one_line_error(run(*seeds, "--activations", str(tmp_path / "acts.csv")))
    assert "must be a .npy or .safetensors file" in line
    np.save(tmp_path / "one.npy", np.ones((1, 16), dtype=np.float32))
    line = one_line_error(run(*seeds, "--activations", str(tmp_path / "one.npy")))
    assert "expected [N >= 2, 16]" in line
    np.save(tmp_path / "flat.npy", np.ones((10, 16), dtype=np.float32))
    line = one_line_error(run(*seeds, "--activations", str(tmp_path / "flat.npy")))
    assert "the activations have no variance" in line


def test_live_masks_are_checked() -> None:
    saes = [sae("a"), sae("b", seed=1)]
    x = torch.randn(50, 16, generator=torch.Generator().manual_seed(0))
    alive = torch.ones(24, dtype=torch.bool)
    with pytest.raises(HusaiError, match="b: no latent fires on any row"):
        compare(saes, lives=[alive, torch.zeros(24, dtype=torch.bool)], x=x)
    with pytest.raises(HusaiError, match=r"live mask \(23,\), expected \(24,\)"):
        compare(saes, lives=[alive, alive[:23]], x=x)
    with pytest.raises(HusaiError, match="need activations"):
        compare(saes, lives=[alive, alive])
    live = compare(saes, lives=[alive, alive], x=x)
    assert [s["n_live"] for s in live["saes"]] == [24, 24]
    assert live["live"]["live_pwmcc"]["mean"] == pytest.approx(compare(saes)["pairs"][0]["pwmcc"])


# ----------------------------------------------------------------------------- large SAEs


def test_sparse_matching_is_exact_where_the_dense_solver_can_check_it() -> None:
    from husai.compare import sparse_match
    from husai.stability import hungarian_match

    g = torch.Generator().manual_seed(1)
    a = torch.randn(300, 32, generator=g)
    b = a[torch.randperm(300, generator=g)] + 0.1 * torch.randn(300, 32, generator=g)
    sm, dm = sparse_match(a, b, candidates=8), hungarian_match(a, b)
    assert torch.equal(sm.partner, dm.partner)
    assert sm.mcc == pytest.approx(dm.mcc, abs=1e-9) and sm.gap < 1e-5
    # random dictionaries of different widths: never above the optimum, which never
    # exceeds the bound
    a, b = torch.randn(200, 32, generator=g), torch.randn(350, 32, generator=g)
    sm, dm = sparse_match(a, b, candidates=8), hungarian_match(a, b)
    total = float(sm.cosine.sum())  # (float32 and float64 unit rows differ by ~1e-8)
    assert total <= float(dm.cosine.sum()) + 1e-6 <= sm.upper_bound + 1e-6
    assert sm.n_matched == 200 and sm.mcc >= dm.mcc - sm.gap - 1e-12
    # every pair a candidate: the dense solver, exactly
    full = sparse_match(a, b, candidates=400)
    assert torch.equal(full.partner, dm.partner)
    # one candidate each admits no full matching here: it doubles them until one does
    few = sparse_match(a[:60], b[:60], candidates=1, column_candidates=1)
    assert few.candidates > 1 and few.n_matched == 60


def test_the_candidate_search_is_the_same_in_any_chunking() -> None:
    """One pass gives both sides' candidates: chunks of one row, of a few rows (fewer
    than the column candidates) and the whole matrix at once find the same candidates
    and the same matching; the column candidates are each column's best."""
    from husai.compare import _scan_candidates, sparse_match

    g = torch.Generator().manual_seed(5)
    a, b = 3.0 * torch.randn(90, 16, generator=g), torch.randn(70, 16, generator=g)
    whole = _scan_candidates(a, b, 5, 4, True, 90 * 70)
    for elements in (70, 3 * 70, 1000):
        got = _scan_candidates(a, b, 5, 4, True, elements)
        for k in (0, 2):  # the same candidates; cosines equal to float32 round-off
            assert torch.equal(got[k], whole[k])
            assert torch.allclose(got[k + 1], whole[k + 1], atol=1e-6)
    cos = (
        torch.nn.functional.normalize(a, dim=1) @ torch.nn.functional.normalize(b, dim=1).T
    ).abs()
    top = cos.topk(4, dim=0)
    assert torch.equal(whole[2], top.indices)
    assert torch.allclose(whole[3], top.values, atol=1e-6)
    assert torch.equal(whole[0], cos.topk(5, dim=1).indices)
    one, many = sparse_match(a, b, chunk_elements=70), sparse_match(a, b)
    assert torch.equal(one.partner, many.partner)
    assert one.upper_bound == pytest.approx(many.upper_bound, abs=1e-5)


def test_large_pairs_take_the_sparse_path_with_the_same_answers() -> None:
    a = sae("a", n=64, d=16)
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(4))
    b = SAEAtoms("b", a.decoder[perm] + 0.01, a.encoder[perm])
    dense = compare_pair(a, b, ranks=(4, 8))
    sparse = compare_pair(a, b, ranks=(4, 8), dense_limit=0)
    assert (dense["matching_method"], sparse["matching_method"]) == ("dense", "sparse")
    assert dense["matching_gap"] is None and max(sparse["matching_gap"].values()) < 1e-5
    for key in ("pwmcc", "pwmcc_ab", "pwmcc_ba", "hungarian_mcc", "shared_fraction"):
        assert sparse[key] == pytest.approx(dense[key], abs=1e-6), key
    assert sparse["subspace_overlap"] == pytest.approx(dense["subspace_overlap"])
    pairs = [(m["a"], m["b"], m["shared"]) for m in dense["matching"]]
    assert [(m["a"], m["b"], m["shared"]) for m in sparse["matching"]] == pairs
    for key in ("decoder_cos", "encoder_cos"):
        got = [m[key] for m in sparse["matching"]]
        assert got == pytest.approx([m[key] for m in dense["matching"]], abs=1e-9)


def test_large_reference_pairs_draw_the_same_atoms_one_part_at_a_time() -> None:
    """Above the dense limit the isotropic reference is drawn per part (decoders, then
    encoders) instead of as whole SAEs: the same atoms, so the same numbers (up to the
    float32 search and the matching's reported gap)."""
    saes = [sae("a", n=48, d=16), sae("b", n=40, d=16, seed=7)]
    small, large = compare(saes, matching=False), compare(saes, matching=False, dense_limit=0)
    want, got = small["pairs"][0]["isotropic"], large["pairs"][0]["isotropic"]
    assert got["matching_gap"] is not None and want["matching_gap"] is None
    for key in ("pwmcc", "pwmcc_ab", "pwmcc_ba"):
        assert got[key] == pytest.approx(want[key], abs=1e-6), key
    gap = got["matching_gap"]["decoder"]
    assert (
        want["hungarian_mcc"] - gap - 1e-9 <= got["hungarian_mcc"] <= want["hungarian_mcc"] + 1e-9
    )
    ref = isotropic_reference(saes)
    direct = compare_pair(ref[0], ref[1], matching=False, dense_limit=0)
    assert {k: direct[k] for k in got if k not in ("a", "b")} == {
        k: got[k] for k in got if k not in ("a", "b")
    }


def test_chunked_subspace_overlap_and_three_reference_pairs() -> None:
    """The large path's subspace overlap sums its Gram matrices over chunks: any chunk
    size gives husai.stability's overlap. With three SAEs, each large reference pair
    draws the atoms of its own positions (seed + i, seed + j)."""
    from husai.compare import _subspace_overlap_chunked
    from husai.stability import subspace_overlap

    g = torch.Generator().manual_seed(6)
    a, b = torch.randn(50, 12, generator=g), torch.randn(45, 12, generator=g)
    want = subspace_overlap(a, b, (2, 4, 12))
    for chunk in (1, 7, 50):
        got = _subspace_overlap_chunked(a, b, (2, 4, 12), chunk=chunk)
        assert got == pytest.approx(want, abs=1e-12)
    saes = [sae("a", n=40, d=16), sae("b", n=36, d=16, seed=3), sae("c", n=44, d=16, seed=9)]
    ref = isotropic_reference(saes, seed=2)
    large = compare(saes, matching=False, dense_limit=0, seed=2, n_boot=50)
    for k, (i, j) in enumerate(((0, 1), (0, 2), (1, 2))):
        direct = compare_pair(ref[i], ref[j], matching=False, dense_limit=0)
        got = large["pairs"][k]["isotropic"]
        assert {key: direct[key] for key in got} == got, (i, j)


def test_sparse_matching_signed_and_with_the_larger_side_first() -> None:
    """The signed cosine can be -1: such an edge must stay a candidate (a zero weight
    would be dropped). With A larger than B the bound holds from B's side."""
    from husai.compare import sparse_match
    from husai.stability import hungarian_match

    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[-1.0, 0.0], [-math.sin(0.1), math.cos(0.1)]])
    sm = sparse_match(a, b, absolute=False, candidates=2)
    dm = hungarian_match(a, b, absolute=False)
    assert float(sm.cosine.sum()) == pytest.approx(float(dm.cosine.sum()), abs=1e-9)
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(350, 24, generator=g), torch.randn(200, 24, generator=g)
    for absolute in (True, False):
        sm = sparse_match(a, b, absolute=absolute, candidates=4)
        dm = hungarian_match(a, b, absolute=absolute)
        assert sm.n_matched == 200
        assert float(sm.cosine.sum()) <= float(dm.cosine.sum()) + 1e-6 <= sm.upper_bound + 1e-6
