"""End to end: the whole DVC pipeline on the tiny profile, twice from scratch."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.deps import uncovered
from tests.paper_check import check_report
from tests.pipeline import env_for, run, run_in_terminal, wipe_outputs
from tests.test_plots_offline import external_refs


@pytest.fixture(scope="module")
def tiny_repo(tiny_pipeline: Path) -> Path:
    """The session's tiny pipeline (tests/conftest.py), traced into ``<repo>/../traces``."""
    return tiny_pipeline


def _locked_stages(repo: Path) -> dict:
    return YAML(typ="safe", pure=True).load((repo / "dvc.lock").read_text())["stages"]


def test_stage_deps_cover_the_code_each_stage_runs(tiny_repo: Path) -> None:
    """Every project file whose functions a stage executed is one of its dvc.yaml deps (or
    lies in a folder dep), except the plumbing listed in tests/deps.py."""
    missing = {}
    for name, entry in _locked_stages(tiny_repo).items():
        trace = json.loads((tiny_repo.parent / "traces" / f"{name}.json").read_text())
        executed = [tuple(pair) for pair in trace["executed"]]
        assert any(rel.startswith("stages/") for rel, _ in executed), name  # the hook ran
        gaps = uncovered(executed, [d["path"] for d in entry.get("deps", [])])
        if gaps:
            missing[name] = {rel: names[:3] for rel, names in gaps.items()}
    assert not missing, f"dvc.yaml deps miss code these stages run: {missing}"


def test_the_deps_check_fails_when_a_dep_is_removed(tiny_repo: Path) -> None:
    """The check above can fail: drop one code dep of stage saes and it is reported."""
    entry = _locked_stages(tiny_repo)["saes@modular"]
    trace = json.loads((tiny_repo.parent / "traces" / "saes@modular.json").read_text())
    executed = [tuple(pair) for pair in trace["executed"]]
    deps = [d["path"] for d in entry["deps"]]
    assert uncovered(executed, deps) == {}
    removed = "stages/saes.py"
    gaps = uncovered(executed, [d for d in deps if d != removed])
    assert list(gaps) == [removed] and "main" in gaps[removed]


def test_repro_runs_every_stage(tiny_repo: Path) -> None:
    yaml = YAML(typ="safe", pure=True)
    stages = set(yaml.load((tiny_repo / "dvc.yaml").read_text())["stages"])
    locked = set(yaml.load((tiny_repo / "dvc.lock").read_text())["stages"])
    assert stages <= {name.split("@")[0] for name in locked}
    status = run(tiny_repo, "dvc", "status", "--json")
    assert json.loads(status.stdout or "{}") == {}


def test_inputs_match_the_hashes_dvc_records(tiny_repo: Path) -> None:
    """stages/_inputs.py hashes files and folders exactly as DVC 3 does."""
    from stages._inputs import dir_md5, file_md5

    outs = [o for e in _locked_stages(tiny_repo).values() for o in e.get("outs", [])]
    assert {"models/saes/modular", "models/transformer", "data/domains/modular.safetensors"} <= {
        o["path"] for o in outs
    }
    for out in outs:
        path = tiny_repo / out["path"]
        assert (dir_md5(path) if path.is_dir() else file_md5(path)) == out["md5"], out["path"]


def test_params_changes_rerun_only_what_uses_them(tiny_repo: Path) -> None:
    """A key every sweep cell overrides reruns no cell; a misspelt section fails the first
    stage of `dvc repro` with the one-line error, and nothing else runs."""
    params = tiny_repo / "params.yaml"
    original = params.read_text()
    try:
        params.write_text(original.replace("  k: 4\n", "  k: 3\n", 1))
        changed = set(json.loads(run(tiny_repo, "dvc", "status", "--json").stdout))
        assert {"data", "saes@modular", "stability@modular"} <= changed
        assert not {name for name in changed if name.startswith("sweep")}, changed
        params.write_text(original + "transformr:\n  epochs: 3\n")
        proc = run(tiny_repo, "dvc", "repro", check=False)
        assert proc.returncode != 0
        assert (
            "husai data: error: transformr = {'epochs': 3}: unknown key"
            in proc.stdout + proc.stderr
        )
        assert "Traceback" not in proc.stdout + proc.stderr
    finally:
        params.write_text(original)
    assert json.loads(run(tiny_repo, "dvc", "status", "--json").stdout or "{}") == {}


def test_tiny_transformer_groks_and_shows_fourier_structure(tiny_repo: Path) -> None:
    tf = json.loads((tiny_repo / "metrics/transformer.json").read_text())
    fourier = json.loads((tiny_repo / "metrics/fourier.json").read_text())
    assert tf["test_accuracy"] >= 0.99 and tf["grokking_epoch"] is not None
    assert tf["fast_forward_max_abs_error"] < 1e-3
    assert 1 <= len(fourier["key_frequencies"]) <= 6
    assert (
        fourier["activation_key_frequency_variance_share"]
        > fourier["untrained_activation_key_frequency_variance_share"] + 0.2
    )


def test_paper_figures_and_report_from_the_tiny_pipeline(tiny_repo: Path) -> None:
    from paper.figures import FIGURES

    figures = tiny_repo / "paper" / "figures"
    report = (tiny_repo / "paper" / "report.md").read_text()
    present = {spec.name for spec in FIGURES if (figures / f"{spec.name}.png").exists()}
    for name in present:
        for ext in ("png", "pdf"):
            assert (figures / f"{name}.{ext}").stat().st_size > 5_000, name
    assert {"fig1_grokking", "fig2_fourier"} <= present
    for spec in FIGURES:  # every figure is either rendered or said to be skipped
        if spec.name not in present:
            assert f"`{spec.name}` | skipped: " in report, spec.name
    assert check_report(tiny_repo) > 40
    # a second render, in another process with another hash seed, is byte-identical
    again = tiny_repo / "paper-again"
    env_run = [
        "env",
        "PYTHONHASHSEED=123",
        "husai",
        "paper",
        "--figures",
        str(again / "figures"),
        "--report",
        str(again / "report.md"),
        "--sources",
        str(again / "report_sources.json"),
    ]
    run(tiny_repo, *env_run)
    assert sorted(p.name for p in (again / "figures").iterdir()) == sorted(
        p.name for p in figures.iterdir()
    )
    for p in figures.iterdir():
        assert (again / "figures" / p.name).read_bytes() == p.read_bytes(), p.name
    assert (again / "report_sources.json").read_bytes() == (
        tiny_repo / "paper" / "report_sources.json"
    ).read_bytes()


def test_tiny_dynamics_rises_above_random_and_analyses_run(tiny_repo: Path) -> None:
    dyn = json.loads((tiny_repo / "metrics/dynamics.json").read_text())
    for name, c in dyn["configs"].items():
        first, last = c["checkpoints"][0], c["checkpoints"][-1]
        iso = c["random"]["isotropic"]["pwmcc"]["mean"]
        assert first["step"] == 0 and last["step"] == c["total_steps"]
        assert first["stability"]["pwmcc"]["mean"] < iso + 0.05, name  # untrained ~ random
        assert last["stability"]["pwmcc"]["ci"][0] > iso + 0.1, name
        assert last["stability"]["shared_fraction"]["mean"] > 0.05, name
    geo = json.loads((tiny_repo / "metrics/geometry.json").read_text())
    pred = json.loads((tiny_repo / "metrics/predictors.json").read_text())
    assert set(geo["configs"]) == set(pred["configs"]) == {"topk", "batchtopk", "standard"}
    for c in pred["configs"].values():
        assert c["auc"]["decoder_norm"]["pooled"] in (0.5, None)


def test_second_run_from_scratch_gives_the_same_lock(tiny_repo: Path) -> None:
    first = (tiny_repo / "dvc.lock").read_text()
    wipe_outputs(tiny_repo)
    run(tiny_repo, "dvc", "repro")
    assert (tiny_repo / "dvc.lock").read_text() == first


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_the_sweep_on_slurm_writes_what_the_local_run_wrote(
    tiny_repo: Path, slurm, tmp_path: Path
) -> None:
    """The tiny sweep's cells, their outputs deleted, are sent to the local SLURM all at once
    by `husai submit` (one job array per cell); `dvc repro` with HUSAI_EXECUTOR=slurm then
    collects them, submitting nothing, and writes the local run's bytes and the same
    dvc.lock. A unit that raises in its task fails its cell with one line naming the unit
    and its log, and writes nothing."""
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo, symlinks=True)
    cells = sorted(p for p in (repo / "metrics" / "sweep").iterdir() if p.is_dir())
    assert len(cells) == 4
    for cell in cells:
        shutil.rmtree(cell)
    slurm_env = {"HUSAI_EXECUTOR": "slurm"}
    proc = run(repo, "husai", "submit", env=slurm_env)
    assert proc.stdout.count("as SLURM array") == 4, proc.stdout
    assert proc.stdout.count("; `dvc repro` collects them") == 4
    proc = run(repo, "dvc", "repro", env=slurm_env)
    assert "as SLURM array" not in proc.stdout  # every unit was finished or queued
    assert proc.stdout.count("units already finished") == 4, proc.stdout
    assert _tree(repo / "metrics" / "sweep") == _tree(tiny_repo / "metrics" / "sweep")
    assert (repo / "dvc.lock").read_bytes() == (tiny_repo / "dvc.lock").read_bytes()
    assert not any((repo / ".husai-scratch").iterdir())  # each cell cleared its scratch

    yaml = YAML(typ="safe", pure=True)
    bad = yaml.load((repo / "params.yaml").read_text())
    bad["sweep"]["lr"] = [bad["sweep"]["lr"][0], 1000.0]  # diverges
    yaml.dump(bad, repo / "bad.yaml")
    args = ["husai", "sweep", "--arch", "topk", "--d-sae", "8", "--params", "bad.yaml"]
    proc = run(repo, *args, "--out", "out", check=False, env={"HUSAI_EXECUTOR": "slurm"})
    assert proc.returncode == 2, proc.stderr
    error = proc.stderr.strip()
    assert error.startswith("husai sweep: error: sweep@topk-d8: 1 of 2 units failed on SLURM; ")
    assert "unit topk-d8-k2-lr1000 (job " in error and "diverged at step" in error
    assert "Traceback" not in error and "\n" not in error
    log = Path(error.split("; log: ")[1].split(" (a rerun")[0])
    assert log.is_file() and "DivergedError" in log.read_text()
    assert not (repo / "out").exists()


def test_stability_and_recovery_cover_every_baseline_config(tiny_repo: Path) -> None:
    stab = json.loads((tiny_repo / "metrics/stability/modular.json").read_text())
    rec = json.loads((tiny_repo / "metrics/recovery.json").read_text())
    params = YAML(typ="safe", pure=True).load((tiny_repo / "params.yaml").read_text())
    assert set(stab) == set(rec) == set(params["saes"]["modular"])
    for name, s in stab.items():
        assert s["pwmcc"]["ci"][0] <= s["pwmcc"]["mean"] <= s["pwmcc"]["ci"][1]
        assert s["pwmcc_ratio_to_random"]["ratio"] == pytest.approx(
            s["pwmcc"]["mean"] / s["random_pwmcc"]["mean"], rel=1e-4
        )
        assert 0 <= rec[name]["key_frequency_coverage"]["mean"] <= 1


def test_sweep_summary_matches_the_configuration_files(tiny_repo: Path) -> None:
    summary = json.loads((tiny_repo / "metrics/sweep.json").read_text())
    files = sorted((tiny_repo / "metrics/sweep").glob("*/*.json"))
    entries = {e["config"]: e for e in (json.loads(f.read_text()) for f in files)}
    params = YAML(typ="safe", pure=True).load((tiny_repo / "params.yaml").read_text())["sweep"]
    assert {f.parent.name for f in files} == {
        f"{a}-d{d}" for a in params["architectures"] for d in params["d_sae"]
    }
    assert (
        entries["topk-d8-k16"]["skipped"] and "must be <= d_sae" in entries["topk-d8-k16"]["reason"]
    )
    trained = {n: e for n, e in entries.items() if not e["skipped"]}
    # every sparsity level at each learning rate; the second rate's names say it
    assert summary["n_configs"] == len(trained) == 10 and summary["n_skipped"] == 2
    assert summary["n_saes"] == 10 * len(params["seeds"])
    assert trained["topk-d8-k2-lr0.003"]["hyperparameters"]["lr"] == 0.003
    assert trained["topk-d8-k2"]["hyperparameters"]["lr"] == 0.01
    assert summary["lr"] == [0.01, 0.003] and set(summary["by_lr"]) == {"0.01", "0.003"}
    for e in trained.values():  # trained to the criterion, measured at each length
        runs = e["training"]["epochs_run"]
        assert len(runs) == len(params["seeds"]) and max(runs) <= params["epochs"]
        assert len(e["training"]["converged"]) == len(runs)
        assert [ln["epochs"] for ln in e["lengths"]] == params["lengths"]
        assert e["live"]["shift_null_live_pwmcc"] is not None
    assert [b["epochs"] for b in summary["by_length"]] == [*params["lengths"], None]
    assert summary["goldilocks_live"]["answer"]
    ratio = {n: e["stability"]["pwmcc_ratio_to_random"] for n, e in trained.items()}
    best_name = max(ratio, key=lambda n: ratio[n]["ratio"])
    best = summary["best_ratio"][0]
    assert best["config"] == best_name
    assert best["ratio"] == ratio[best_name]["ratio"] and best["ratio_ci"] == ratio[best_name]["ci"]
    assert best["pwmcc"] == trained[best_name]["stability"]["pwmcc"]["mean"]
    assert best["l0"] == trained[best_name]["metrics"]["l0"]
    # matchings only up to hungarian_max_d_sae (8)
    assert trained["topk-d8-k2"]["stability"]["shared_fraction"] is not None
    assert trained["topk-d32-k2"]["stability"]["shared_fraction"] is None
    csv = (tiny_repo / "metrics/curves/sweep.csv").read_text().splitlines()
    assert csv[0].startswith("config,architecture,d_sae") and len(csv) == 1 + len(trained)
    assert summary["goldilocks"]["answer"]


# ----------------------------------------------------------------------------- the tutorial

TUTORIAL = Path("docs") / "tutorial.ipynb"


def test_the_tutorial_notebook_is_committed_without_outputs(repo_root: Path) -> None:
    """docs/tutorial.ipynb is kept clean: valid nbformat 4, no outputs, no execution
    counts or timings (they would differ on every run and hold machine-specific paths)."""
    import nbformat

    nb = nbformat.read(repo_root / TUTORIAL, as_version=4)
    nbformat.validate(nb)
    dirty = [
        cell.id
        for cell in nb.cells
        if cell.cell_type == "code"
        and (cell.outputs or cell.execution_count is not None or "execution" in cell.metadata)
    ]
    assert not dirty, (
        f"{TUTORIAL}: cells {dirty} hold outputs; clear them (Jupyter: Edit > Clear Outputs "
        "of All Cells) and save before committing"
    )


def test_the_tutorial_notebook_runs_on_the_tiny_pipeline(
    tiny_repo: Path, repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This checkout's tutorial, executed cell by cell in a Jupyter kernel of the running
    interpreter against the tiny pipeline's outputs (HUSAI_REPO; the kernel starts in a
    folder that is no repository, so the variable must be honoured): no cell fails, so
    its numbers equal metrics/stability/modular.json (the notebook asserts it)."""
    import sys

    import nbformat
    from nbclient import NotebookClient

    spec = tmp_path / "jupyter" / "kernels" / "husai-tutorial"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "HUSAI tests", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("HUSAI_REPO", str(tiny_repo))
    start = tmp_path / "start"
    start.mkdir()
    nb = nbformat.read(repo_root / TUTORIAL, as_version=4)
    NotebookClient(
        nb,
        kernel_name="husai-tutorial",
        timeout=300,
        resources={"metadata": {"path": str(start)}},
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"repository {tiny_repo.resolve()}" in text
    assert f"browser page {tiny_repo.resolve()}/paper/browse/modular/topk.html" in text
    assert "live counts as in the JSON" in text and "= JSON" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the latent on the grid


def _plots_page(repo: Path, out: Path) -> tuple[str, list[str]]:
    """`dvc plots show -o out` (plain: the template comes from .dvc/config); the page and
    the plot divs on it."""
    run(repo, "dvc", "plots", "show", "-o", str(out))
    page = (out / "index.html").read_text(encoding="utf-8")
    return page, re.findall(r'<div id = "([^"]+)">', page)


def test_dvc_plots_show_needs_no_network(tiny_repo: Path, tmp_path: Path) -> None:
    page, divs = _plots_page(tiny_repo, tmp_path / "plots")
    top = [
        next(iter(p))
        for p in YAML(typ="safe", pure=True).load((tiny_repo / "dvc.yaml").read_text())["plots"]
    ]
    assert set(top) <= set(divs)
    assert page.count("vegaEmbed('#") == len(divs)
    assert external_refs(page) == [] and "cdn.jsdelivr" not in page
    for lib in ("vega", "vega-lite", "vega-embed"):  # the libraries, inlined
        assert f"/*! {lib} " in page
    assert "{" + "scripts}" not in page and "{plot_divs}" not in page


def test_dvc_plots_page_renders_offline_in_chromium(tiny_repo: Path, tmp_path: Path) -> None:
    """Every plot of the page is drawn by headless Chromium with all network blocked."""
    browser = _chromium()
    _, divs = _plots_page(tiny_repo, tmp_path / "plots")
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--proxy-server=127.0.0.1:9",  # nothing listens there: every request fails
            "--proxy-bypass-list=<-loopback>",
            "--virtual-time-budget=20000",
            "--dump-dom",
            (tmp_path / "plots" / "index.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    # vega-embed draws each chart into its div: a canvas of class "marks"
    starts = sorted((dom.find(f'<div id="{d}"'), d) for d in divs)
    ends = [pos for pos, _ in starts[1:]] + [len(dom)]
    drawn = [
        d
        for (pos, d), end in zip(starts, ends, strict=True)
        if pos >= 0 and 'class="marks"' in dom[pos:end]
    ]
    assert sorted(drawn) == sorted(divs)


def test_progress_bars_on_a_terminal_leave_the_outputs_unchanged(
    tiny_repo: Path, tmp_path: Path
) -> None:
    """A sweep cell (trained and skipped configurations) run on a pseudo-terminal draws its
    bars (stages/_progress.py) and writes the same bytes as the pipeline's run."""
    cell = tiny_repo / "metrics" / "sweep" / "topk-d8"
    args = ["husai", "sweep", "--arch", "topk", "--d-sae", "8", "--out", str(tmp_path)]
    rc, shown = run_in_terminal(args, tiny_repo, env_for(tiny_repo))
    assert rc == 0, shown
    assert "sweep topk-d8" in shown and "ETA" in shown  # the bars were drawn
    assert "sweep: topk-d8-k16 skipped" in shown  # the stage's own lines too
    files = sorted(p.name for p in cell.iterdir())
    assert files and sorted(p.name for p in (tmp_path / "topk-d8").iterdir()) == files
    for name in files:
        assert (tmp_path / "topk-d8" / name).read_bytes() == (cell / name).read_bytes(), name


# ----------------------------------------------------------------------------- husai browse


def _chromium() -> str:
    """Debian's chromium: found on PATH, or installed with apt-get when this process is root
    (as scripts/container-check installs buildah); otherwise the test is skipped, saying why."""
    import os
    import subprocess

    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and this machine cannot install it (root + apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    for cmd in (
        ["apt-get", *lock, "update", "-qq"],
        ["apt-get", *lock, "install", "-y", "-qq", "chromium"],
    ):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}"
    found = shutil.which("chromium")
    assert found, "apt-get installed chromium, but it is not on PATH"
    return found


def _headless(chromium: str, url: str, profile: Path, *args: str) -> str:
    import subprocess

    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
        "--virtual-time-budget=30000",
        *args,
        url,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}):\n{proc.stderr[-2000:]}"
    return proc.stdout


@pytest.mark.parametrize(("domain", "config"), [("modular", "topk"), ("synthetic", "topk")])
def test_browse_page_draws_every_live_latent_in_headless_chromium(
    tiny_repo: Path, tmp_path: Path, domain: str, config: str
) -> None:
    """The stage's page, opened from disk in headless Chromium (no network), draws one row
    and one map per live latent (live counts from metrics/stability, computed apart), and
    the region of the first map (the most often firing latent) in a screenshot is not
    blank: several colours, at least 1% of it coloured by the colour map."""
    import re

    from PIL import Image

    chromium = _chromium()
    folder = tiny_repo / "paper" / "browse" / domain
    page = folder / f"{config}.html"
    assert f'href="{config}.html"' in (folder / "index.html").read_text()
    text = page.read_text()
    assert "http://" not in text and "https://" not in text
    stab = json.loads((tiny_repo / "metrics" / "stability" / f"{domain}.json").read_text())
    n_live = sum(stab[config]["live"]["n_live_per_seed"])
    assert n_live > 0
    # most often firing latent first, no groups: the first map is one that fires a lot
    url = page.resolve().as_uri() + "#sort=fr&dir=desc&group="
    dom = _headless(chromium, url, tmp_path / "profile", "--dump-dom")
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None, dom[:500]
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    assert attrs.get("data-status") == "ready", attrs
    assert int(attrs["data-drawn"]) == n_live
    assert len(re.findall(r'<tr class="latent"', dom)) == n_live
    canvases = re.findall(r"<canvas [^>]*>", dom)
    assert len(canvases) == n_live and all('data-drawn="1"' in c for c in canvases)
    left, top, width, height = (int(v) for v in attrs["data-first-map"].split(","))
    assert width > 10 and height > 10
    shot = tmp_path / "page.png"
    _headless(chromium, url, tmp_path / "profile", f"--screenshot={shot}")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1400, 1000)
    region = image.crop((left, top, left + width, top + height))
    colours = region.getcolors(maxcolors=1 << 16) or []
    assert len(colours) >= 3, colours  # a map, not a blank box
    coloured = sum(n for n, (r, g, b) in colours if max(r, g, b) - min(r, g, b) > 30)
    assert coloured >= 0.01 * width * height, (coloured, width, height)
