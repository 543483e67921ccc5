"""`dvc exp` on the real pipeline (tiny profile) and the `husai exp-summary` table.

One temporary clone ("alice") is reproduced once; experiments then change only SAE
params, so the transformer must not re-run. Sharing goes through a bare git remote
and a local-folder DVC remote, the way machines share an S3 or SSH remote.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from stages.exp import experiments, rows
from tests.pipeline import run

ROOT = Path(__file__).resolve().parents[1]
GIT_ID = ["-c", "user.name=t", "-c", "user.email=t@t"]


# ----------------------------------------------------------------------------- unit


def _node(
    rev: str, name: str | None, k: int, pwmcc: float, l0s: list[float], exps: list | None = None
) -> dict:
    saes = {
        f"topk/seed{i}": {
            "config": "topk",
            "seed": i,
            "metrics": {"l0": v, "explained_variance": 0.9},
        }
        for i, v in enumerate(l0s)
    }
    return {
        "rev": rev,
        "name": name,
        "data": {
            "rev": rev,
            "params": {"params.yaml": {"data": {"sae": {"k": k, "lr": 0.1}, "task": {"p": 31}}}},
            "metrics": {
                "metrics/stability/modular.json": {
                    "data": {
                        "topk": {
                            "pwmcc": {
                                "mean": pwmcc,
                                "std": 0.01,
                                "ci": [pwmcc - 0.02, pwmcc + 0.02],
                            },
                            "random_pwmcc": {"mean": 0.25},
                            "untrained_pwmcc": 0.26,
                            "pwmcc_ratio_to_random": {"ratio": pwmcc / 0.25, "ci": [1.0, 3.0]},
                            "subspace_random_pwmcc": {"mean": 0.8, "std": 0.001},
                            "pwmcc_ratio_to_subspace": {"ratio": pwmcc / 0.8},
                            "hungarian_mcc": {"mean": 0.5},
                            "shared_fraction": {"mean": 0.4},
                        }
                    }
                },
                "metrics/saes/modular.json": {"data": {"saes": saes}},
            },
        },
        "experiments": exps,
    }


def test_summary_rows_from_hand_made_exp_show() -> None:
    exp = _node("e" * 40, "k8", 8, 0.6, [7.0, 9.0])
    failed = {"rev": "f" * 40, "name": "broken", "data": None}
    show = [
        _node("workspace", None, 4, 0.5, [4.0, 4.0]),
        _node("a" * 40, "main", 4, 0.5, [3.0, 5.0], [{"revs": [exp]}, {"revs": [failed]}]),
    ]
    exps = experiments(show)
    assert [e.name for e in exps] == ["workspace", "main", "k8"]
    assert exps[2].baseline == "main" and exps[2].changed == {"sae.k": 8}
    assert exps[0].changed == {} and exps[1].changed == {}
    table = {r.experiment: r for r in rows(exps)}
    k8 = table["k8 (main)"]
    assert k8.changed == "sae.k=8"
    assert k8.l0 == pytest.approx(8.0) and table["main"].l0 == pytest.approx(4.0)
    assert k8.pwmcc == 0.6 and k8.pwmcc_ci == pytest.approx((0.58, 0.62))
    assert k8.random_pwmcc == 0.25 and k8.untrained_pwmcc == 0.26
    assert k8.ratio == pytest.approx(2.4) and k8.shared_fraction == 0.4
    assert k8.subspace_pwmcc == 0.8 and k8.subspace_ratio == pytest.approx(0.75)
    assert k8.pwmcc_std == 0.01
    assert list(rows(exps, {"standard"})) == []


def test_summary_rejects_a_bad_saved_file(tmp_path: Path) -> None:
    bad = tmp_path / "show.json"
    bad.write_text("{not json")
    proc = subprocess.run(
        ["husai", "exp-summary", "--input", str(bad)],
        capture_output=True,
        text=True,
        env=_env(ROOT),
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not JSON" in lines[0]


def _env(repo: Path) -> dict[str, str]:
    from tests.pipeline import env_for

    return env_for(repo)


# ----------------------------------------------------------------------------- end to end


def _git(repo: Path, *args: str) -> str:
    return run(repo, "git", *GIT_ID, *args).stdout


def _stage_runs(repo: Path) -> list[str]:
    log = repo / "logs/timings.jsonl"
    if not log.exists():
        return []
    return [json.loads(line)["stage"] for line in log.read_text().splitlines() if line.strip()]


def _summary(repo: Path) -> dict[str, dict]:
    out = run(repo, "husai", "exp-summary", "--json").stdout
    return {(r["experiment"].split(" ")[0], r["config"]): r for r in json.loads(out)}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: Path) -> dict[str, Path]:
    """alice: a copy of the session's reproduced tiny clone (tests/conftest.py), pushed to a
    bare git remote and a DVC folder remote."""
    base = tmp_path_factory.mktemp("exp")
    origin, remote = base / "origin.git", base / "dvc-remote"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    alice = base / "alice"
    shutil.copytree(tiny_pipeline, alice, symlinks=True)
    assert json.loads(run(alice, "dvc", "status", "--json").stdout or "{}") == {}
    run(alice, "dvc", "remote", "add", "-d", "shared", str(remote))
    _git(alice, "add", "-A")
    _git(alice, "commit", "-q", "-m", "tiny baseline")
    _git(alice, "remote", "add", "origin", str(origin))
    _git(alice, "push", "-q", "origin", "main")
    run(alice, "dvc", "push")
    return {"base": base, "origin": origin, "alice": alice}


def test_experiments_rerun_only_the_sae_stages(shared: dict[str, Path]) -> None:
    alice = shared["alice"]
    before = len(_stage_runs(alice))
    run(alice, "dvc", "exp", "run", "-n", "k2", "-S", "sae.k=2")
    run(alice, "dvc", "exp", "run", "-n", "k8", "-S", "sae.k=8")
    rerun = set(_stage_runs(alice)[before:])
    assert {"data", "saes"} <= rerun  # data validates the whole params.yaml (a second)
    assert not rerun & {"transformer", "fourier", "activations"}  # its output is unchanged

    show = json.loads(run(alice, "dvc", "exp", "show", "--json").stdout)
    names = {e.name for e in experiments(show)}
    assert {"k2", "k8"} <= names
    summary = _summary(alice)
    k2, k8 = summary[("k2", "topk")], summary[("k8", "topk")]
    assert k2["changed"] == "sae.k=2" and k8["changed"] == "sae.k=8"
    assert k2["l0"] == pytest.approx(2.0, abs=0.01) and k8["l0"] == pytest.approx(8.0, abs=0.01)
    assert k2["pwmcc"] is not None and k8["pwmcc"] is not None
    assert k2["pwmcc"] != k8["pwmcc"]
    assert k2["random_pwmcc"] is not None  # every stability number beside its baselines
    assert k2["subspace_pwmcc"] is not None and k2["pwmcc_std"] is not None


def test_a_bad_override_fails_in_one_line_and_leaves_the_workspace(shared: dict[str, Path]) -> None:
    alice = shared["alice"]
    params = (alice / "params.yaml").read_text()
    lock = (alice / "dvc.lock").read_text()
    status = _git(alice, "status", "--porcelain")  # the last workspace experiment's changes
    proc = run(alice, "dvc", "exp", "run", "--temp", "-S", "sae.k=-1", check=False)
    assert proc.returncode != 0
    # the pipeline's first stage validates every params section
    errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "husai data: error" in ln]
    assert len(errors) == 1 and "sae.k" in errors[0] and "-1" in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert (alice / "params.yaml").read_text() == params
    assert (alice / "dvc.lock").read_text() == lock
    assert _git(alice, "status", "--porcelain") == status


def test_two_machines_share_experiments_through_remotes(shared: dict[str, Path]) -> None:
    base, origin, alice = shared["base"], shared["origin"], shared["alice"]
    if "k2" not in {
        e.name for e in experiments(json.loads(run(alice, "dvc", "exp", "show", "--json").stdout))
    }:
        run(alice, "dvc", "exp", "run", "-n", "k2", "-S", "sae.k=2")
    run(alice, "dvc", "exp", "push", "origin", "k2")

    bob = base / "bob"
    run(base, "git", "clone", "-q", str(origin), str(bob))
    run(bob, "dvc", "config", "--local", "core.analytics", "false")
    run(bob, "dvc", "pull")
    run(bob, "dvc", "exp", "run", "-n", "bob-k16", "-S", "sae.k=16")
    run(bob, "dvc", "exp", "push", "origin", "bob-k16")
    bob_saes = (bob / "metrics/saes/modular.json").read_text()

    carol = base / "carol"
    run(base, "git", "clone", "-q", str(origin), str(carol))
    run(carol, "dvc", "config", "--local", "core.analytics", "false")
    run(carol, "dvc", "exp", "pull", "origin", "k2")
    run(carol, "dvc", "exp", "pull", "origin", "bob-k16")
    summary = _summary(carol)
    assert summary[("k2", "topk")]["l0"] == pytest.approx(2.0, abs=0.01)
    assert summary[("bob-k16", "topk")]["l0"] == pytest.approx(16.0, abs=0.01)

    run(carol, "dvc", "exp", "apply", "bob-k16")
    run(carol, "dvc", "pull")
    assert (carol / "metrics/saes/modular.json").read_text() == bob_saes
    assert (carol / "models/saes/modular/topk/seed42/sae_weights.safetensors").is_file()
    status = json.loads(run(carol, "dvc", "status", "--json").stdout or "{}")
    assert status == {}
