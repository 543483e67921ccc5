"""``husai submit``: send the units of every stale training stage to SLURM at once.

``dvc repro`` runs one stage at a time, so with the slurm executor the job array of one
sweep cell runs, then the next cell's. ``husai submit`` runs each stale stage among
``saes@*``, ``sweep@*`` and ``identifiability@*`` (or the stages named) with
``HUSAI_SUBMIT_ONLY=1``: the stage builds its units, submits those that are neither
finished nor queued, and stops without writing anything. Every array is then in the
queue together; ``HUSAI_EXECUTOR=slurm dvc repro`` afterwards runs the stages as usual,
and each finds its units finished or queued (:mod:`stages._executor`) instead of
submitting them.

A stage is left to ``dvc repro`` when a stage it depends on is stale too: its inputs
are not made yet. The results in scratch are keyed by params and inputs, so a stage
whose inputs change before ``dvc repro`` runs it computes its units afresh.

It reads the pipeline through DVC's Python API (``dvc.repo.Repo``: status, the stage
graph, each stage's command) and writes nothing to the repository. Not a DVC stage.
"""

from __future__ import annotations

import os
import shlex
import subprocess

import typer

from husai.errors import HusaiError
from stages._common import console, stage
from stages._executor import SUBMIT_ONLY, UNIT_STAGES, cluster_config


@stage("submit")
def main(
    stages: list[str] = typer.Argument(
        None, help="Stages to submit (default: every stale saes@, sweep@, identifiability@)."
    ),
) -> None:
    """Submit the units of every stale training stage as SLURM job arrays, all at once."""
    import networkx as nx
    from dvc.repo import Repo

    if cluster_config().executor != "slurm":
        raise HusaiError(
            "submit: the executor is local (set HUSAI_EXECUTOR=slurm, or executor: slurm "
            "in cluster.yaml)"
        )
    with Repo(".") as repo:
        stale = set(repo.status())
        graph = repo.index.graph
        by_name = {s.addressing: s for s in repo.index.stages}
        unknown = [n for n in stages or [] if n not in by_name]
        if unknown:
            raise HusaiError(f"submit: no stage {unknown[0]!r} in dvc.yaml")
        wanted = stages or [n for n in by_name if n.split("@")[0] in UNIT_STAGES and n in stale]
        runs = []
        for name in wanted:
            if name.split("@")[0] not in UNIT_STAGES:
                raise HusaiError(
                    f"submit: stage {name!r} has no units (only {', '.join(UNIT_STAGES)})"
                )
            if name not in stale:
                console.print(f"submit: {name} is up to date")
                continue
            upstream = sorted(s.addressing for s in nx.descendants(graph, by_name[name]))
            waits = [s for s in upstream if s in stale]
            if waits:
                console.print(f"submit: {name} waits for {waits[0]} (left to dvc repro)")
                continue
            runs.append((name, by_name[name].cmd, by_name[name].wdir))
    failed = []
    for name, cmd, wdir in runs:
        console.print(f"submit: {name}: {cmd}")
        proc = subprocess.run(
            shlex.split(cmd) if isinstance(cmd, str) else cmd,
            cwd=wdir,
            env={**os.environ, SUBMIT_ONLY: "1"},
            check=False,
        )
        if proc.returncode != 0:
            failed.append(name)
    if failed:
        raise HusaiError(
            f"submit: {len(failed)} of {len(runs)} stages failed to submit, first {failed[0]} "
            "(its error is above)"
        )
    console.print(
        f"submit: {len(runs)} stages' units are queued; next: HUSAI_EXECUTOR=slurm dvc repro"
    )
