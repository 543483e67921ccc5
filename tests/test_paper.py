"""Stage ``paper``: figures from hand-made metric files, skips, citations, determinism."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import matplotlib
import pytest
from typer.testing import CliRunner

from paper.build import build
from paper.figures import FIGURES
from stages.cli import app
from tests.paper_check import check_report

runner = CliRunner()
CONFIGS = {"topk": "topk", "batchtopk": "batchtopk", "standard": "standard"}
SEEDS = (42, 123, 456)


def stats(mean: float, half: float = 0.02, ci_list: bool = False) -> dict:
    """A seed statistic in either documented form: ci_low/ci_high, or ci: [low, high]."""
    if ci_list:
        return {"mean": mean, "std": half / 2, "ci": [mean - half, mean + half]}
    return {"mean": mean, "std": half / 2, "ci_low": mean - half, "ci_high": mean + half,
            "n_seeds": 3, "n_pairs": 3}


def fake_metrics() -> dict[str, object]:
    """Metric files shaped like the stages' outputs (analysis files: the documented fields)."""
    curve = "epoch,train_loss,test_loss,train_accuracy,test_accuracy\n" + "".join(
        f"{e},{3.4 / (1 + e)},{3.4 / (1 + max(e - 200, 0))},{min(1.0, e / 100)},"
        f"{min(1.0, max(e - 150, 0) / 100)}\n" for e in range(0, 510, 10))
    spectrum = "frequency,embedding_share,activation_share,untrained_activation_share,key\n" + \
        "".join(f"{k},{0.3 if k in (3, 7) else 0.01},{0.4 if k in (3, 7) else 0.01},0.06,"
                f"{int(k in (3, 7))}\n" for k in range(1, 16))
    saes = {"activations": {"hook": "h", "position": -1, "p": 31, "n": 961, "d_in": 32},
            "saes": {}}
    for i, (name, arch) in enumerate(CONFIGS.items()):
        for j, seed in enumerate(SEEDS):
            saes["saes"][f"{name}/seed{seed}"] = {
                "config": name, "architecture": arch, "seed": seed,
                "hyperparameters": {"architecture": arch, "d_sae": 64, "k": 4,
                                    "l1_coefficient": 3.0},
                "metrics": {"explained_variance": 0.8 + 0.01 * i + 0.003 * j, "l0": 4.0 + j,
                            "frac_alive": 0.7, "mse": 1.0, "cossim": 0.9, "l2_ratio": 0.95}}
    stability = {name: {
        "pwmcc": stats(0.5 + 0.1 * i, ci_list=True), "hungarian_mcc": stats(0.4 + 0.1 * i),
        "shared_fraction": stats(0.2 + 0.1 * i),
        "random_pwmcc": 0.31, "untrained_pwmcc": stats(0.33),
        "random_hungarian_mcc": 0.2, "untrained_hungarian_mcc": 0.21,
        "random_shared_fraction": 0.0, "untrained_shared_fraction": 0.0,
        "pwmcc_ratio_to_random": {"ratio": (0.5 + 0.1 * i) / 0.31, "ratio_ci_low": 1.5,
                                  "ratio_ci_high": 2.5}}
        for i, name in enumerate(CONFIGS)}
    recovery = {name: {"pure_latent_fraction": stats(0.3 + 0.1 * i),
                       "key_frequency_coverage": stats(0.5 + 0.25 * i),
                       "decoder_alignment": stats(0.6 + 0.1 * i),
                       "random_decoder_alignment": 0.3} for i, name in enumerate(CONFIGS)}
    sweep = {"configs": {}}
    for arch, key, values in (("topk", "k", (2, 4, 8)), ("standard", "l1_coefficient", (1, 3))):
        for d in (16, 64):
            for v in values:
                sweep["configs"][f"{arch}_d{d}_{key}{v}"] = {
                    "architecture": arch, "d_sae": d, key: v,
                    "pwmcc": stats(0.4 + 0.001 * d + 0.01 * v),
                    "explained_variance": stats(0.5 + 0.004 * d + 0.01 * v),
                    "pwmcc_ratio_to_random": (0.4 + 0.001 * d + 0.01 * v) / 0.3}
    dynamics = {name: {"checkpoints": [{"step": s, "pwmcc": stats(0.3 + s / 200 + 0.02 * i)}
                                       for s in (0, 1, 2, 4, 8, 16, 32, 64)],
                       "random_pwmcc": 0.31} for i, name in enumerate(CONFIGS)}
    geometry = {name: {"subspace_overlap": stats(0.9), "random_subspace_overlap": 0.25,
                       "gram_spectrum_distance": stats(0.1),
                       "random_gram_spectrum_distance": 0.5} for name in CONFIGS}
    predictors = {name: {"predictors": {"firing_frequency": {"auc": stats(0.7)},
                                        "purity": {"auc": stats(0.8)},
                                        "decoder_norm": {"spearman": stats(0.1)}}}
                  for name in CONFIGS}
    return {
        "metrics/transformer.json": {"train_loss": 1e-4, "train_accuracy": 1.0,
                                     "test_loss": 0.01, "test_accuracy": 0.9995,
                                     "grokking_epoch": 247, "epochs": 500, "grokked": True,
                                     "fast_forward_max_abs_error": 1e-5},
        "metrics/curves/transformer.csv": curve,
        "metrics/fourier.json": {
            "key_frequencies": [3, 7], "embedding_key_frequency_share": 0.6,
            "activation_key_frequency_variance_share": 0.8,
            "untrained_activation_key_frequency_variance_share": 0.13,
            "neuron_purity_fraction": 0.7, "activation_effective_rank": 12.0,
            "untrained_activation_effective_rank": 17.0, "activation_dim": 32},
        "metrics/curves/fourier_spectrum.csv": spectrum,
        "metrics/saes.json": saes,
        "metrics/stability.json": stability,
        "metrics/recovery.json": recovery,
        "metrics/sweep.json": sweep,
        "metrics/dynamics.json": dynamics,
        "metrics/geometry.json": geometry,
        "metrics/predictors.json": predictors,
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
    return runner.invoke(app, ["paper", "--root", str(repo), "--figures", str(repo / figures),
                               "--report", str(repo / "paper/report.md"),
                               "--sources", str(repo / "paper/report_sources.json")])


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
    for name in ("metrics/stability.json", "metrics/sweep.json", "metrics/dynamics.json"):
        del files[name]
    repo = write_repo(tmp_path / "repo", files)
    result = run_paper(repo)
    assert result.exit_code == 0, result.output
    made = {p.stem for p in (repo / "paper/figures").iterdir()}
    assert made == {"fig1_grokking", "fig2_fourier", "fig8a_geometry", "fig8b_predictors"}
    report = (repo / "paper/report.md").read_text()
    for fig in ("fig3_baselines", "fig5_tradeoff", "fig6_recovery"):
        assert f"`{fig}` | skipped: metrics/stability.json not there yet" in report
    assert "`fig4_stability_heatmaps` | skipped: metrics/sweep.json not there yet" in report
    assert "*Pending: metrics/stability.json is not there yet.*" in report
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


def test_a_metric_file_without_a_needed_field_is_skipped_with_the_field_named(
        tmp_path: Path) -> None:
    files = copy.deepcopy(fake_metrics())
    for entry in files["metrics/stability.json"].values():
        del entry["pwmcc"]
        del entry["pwmcc_ratio_to_random"]
    del files["metrics/sweep.json"]
    repo = write_repo(tmp_path / "repo", files)
    out = build(repo)
    assert out.skipped["fig3_baselines"] == (
        "metrics/stability.json: no configuration entries with pwmcc")
    assert "fig1_grokking" in out.rendered


def test_stale_figures_are_removed(full_repo: Path) -> None:
    assert run_paper(full_repo).exit_code == 0
    (full_repo / "metrics/dynamics.json").unlink()
    assert run_paper(full_repo).exit_code == 0
    assert not (full_repo / "paper/figures/fig7_dynamics.png").exists()


@pytest.mark.parametrize(("file", "content", "message"), [
    ("metrics/stability.json", "{not json", "metrics/stability.json is not valid JSON"),
    ("metrics/curves/transformer.csv", "epoch,train_loss\n1,abc\n",
     "metrics/curves/transformer.csv line 2: train_loss = 'abc' is not a number"),
])
def test_unreadable_metric_file_is_a_one_line_error_and_writes_nothing(
        tmp_path: Path, file: str, content: str, message: str) -> None:
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
