"""The stages' executor, local beside slurm, in one run (issue 16).

Makes a copy of this repository on a params profile (default: the tiny profile), runs
``dvc repro`` up to the training stages' inputs, then reruns the training stages
(``saes@*``, ``sweep@*``, ``identifiability@*``: every stage whose units go to the
executor) with ``dvc repro --force --single-item``: first with ``HUSAI_EXECUTOR=local``,
then with ``HUSAI_EXECUTOR=slurm``. Each stage's seconds come from the stages' timing log
(``logs/timings.jsonl``). The two runs must write the same bytes (every output the stages
write, and ``dvc.lock``), or the benchmark fails.

Needs a SLURM: ``scripts/slurm-local up`` gives a one-node one (root, Debian).

    python benchmarks/bench_executor.py [--profile tests/profiles/tiny.yaml] [--keep DIR]

Prints one JSON line per stage and executor, then a Markdown table.
Results: benchmarks/RESULTS-executor.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pipeline import make_clone, run  # noqa: E402

PREFIXES = ("saes@", "sweep@", "identifiability@")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _outputs(repo: Path, stages: list[str]) -> dict[str, bytes]:
    from ruamel.yaml import YAML

    lock = YAML(typ="safe", pure=True).load((repo / "dvc.lock").read_text())["stages"]
    out = {"dvc.lock": (repo / "dvc.lock").read_bytes()}
    for name in stages:
        for o in lock[name].get("outs", []):
            path = repo / o["path"]
            files = _tree(path) if path.is_dir() else {"": path.read_bytes()}
            out.update({f"{o['path']}/{k}": v for k, v in files.items()})
    return out


def _timed(repo: Path, stages: list[str], executor: str) -> tuple[float, dict[str, float]]:
    log = repo / "logs" / "timings.jsonl"
    log.unlink(missing_ok=True)
    start = time.perf_counter()
    run(repo, "dvc", "repro", "--force", "--single-item", *stages, env={"HUSAI_EXECUTOR": executor})
    wall = time.perf_counter() - start
    per_stage: dict[str, float] = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        per_stage.setdefault(entry["stage"], 0.0)
        per_stage[entry["stage"]] += entry["seconds"]
    return wall, per_stage


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", type=Path, default=ROOT / "tests" / "profiles" / "tiny.yaml")
    ap.add_argument("--keep", type=Path, default=None, help="make the copy here and keep it")
    args = ap.parse_args()
    if shutil.which("sbatch") is None:
        sys.exit("bench_executor: no sbatch on PATH (scripts/slurm-local up)")
    base = args.keep or Path(tempfile.mkdtemp(prefix="husai-bench-executor-"))
    repo = make_clone(ROOT, base / "repo", args.profile)
    names = run(repo, "dvc", "stage", "list", "--name-only").stdout.split()
    stages = [n for n in names if n.startswith(PREFIXES)]
    run(repo, "dvc", "repro", *stages)  # the inputs, and a first local run
    rows = []
    outputs = {}
    for executor in ("local", "slurm"):
        wall, per_stage = _timed(repo, stages, executor)
        outputs[executor] = _outputs(repo, stages)
        row = {"executor": executor, "wall_s": round(wall, 1), "stages_s": per_stage}
        print(json.dumps(row), flush=True)
        rows.append(row)
    same = outputs["local"] == outputs["slurm"]
    print(f"\nsame bytes (outputs of {len(stages)} stages and dvc.lock): {same}")
    print(f"cpus: {os.cpu_count()}, profile: {args.profile.name}\n")
    groups = sorted({s.split("@")[0] for s in stages})
    print("| executor | wall (s) | " + " | ".join(f"{g} (s)" for g in groups) + " |")
    print("|---|---|" + "---|" * len(groups))
    for row in rows:
        cells = [f"{row['stages_s'].get(g, 0.0):.1f}" for g in groups]
        print(f"| {row['executor']} | {row['wall_s']:.1f} | " + " | ".join(cells) + " |")
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)
    if not same:
        sys.exit("bench_executor: local and slurm wrote different bytes")


if __name__ == "__main__":
    main()
