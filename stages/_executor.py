"""Where a stage's independent units run: in the stage's own process, or as a SLURM job array.

The stages that train many independent things (``sweep``: a cell's configurations;
``identifiability``: a row's cells; ``saes``: a domain's configurations) hand them to
:func:`executor` as :class:`Unit` objects: a module-level function and its arguments. The
executor is chosen at run time, never by params.yaml, so it is part of no stage's params
hash:

* ``local`` (the default): the units run one after the other in the stage's process;
* ``slurm``: one job array per stage run, one task per unit, through submitit. Each task
  seeds and configures torch from params ``runtime`` as the stage does, runs its unit and
  writes the result to the scratch folder; the stage waits for the array, reads the results
  and writes its DVC outputs. Only the stage's process touches the repository.

The choice and the cluster's options come from ``cluster.yaml`` (or the file named by
``HUSAI_CLUSTER``); ``HUSAI_EXECUTOR=local|slurm`` overrides its ``executor``. See the
README, "Running on a cluster".

Resume: a unit's result in the scratch folder is named by the unit and a digest of the
stage's params file and input files (not of the code). A rerun after a failure or an
interruption reads the finished units' results, waits for tasks still in the queue, and
submits only the rest: a fix to the code reruns only the units that had failed. The stage's
scratch folder is removed once the stage has written its outputs.

Plumbing: where a unit runs does not change what it computes (the tests run the tiny
profile's sweep both ways and compare the bytes), so the stages do not list this file as
a DVC dep. The unit functions it calls are the stages' own, and are traced as such
(tests/deps.py).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.progress import Progress

from husai.errors import HusaiError, ParamError

CLUSTER_FILE = Path("cluster.yaml")
EXECUTORS = ("local", "slurm")
UNIT_STAGES = ("saes", "sweep", "identifiability")  # the stages that hand units over
SUBMIT_ONLY = "HUSAI_SUBMIT_ONLY"  # set by `husai submit`: submit the units, write nothing

OnProgress = Callable[[int, int], None] | None


@dataclass(frozen=True)
class SlurmOptions:
    """Per-task resources of the job arrays and the shared folder their results go to."""

    partition: str | None = None
    time_min: int = 60  # per task (sbatch --time)
    cpus_per_task: int | None = None  # null: params runtime.threads
    mem_gb: float = 8.0
    gpus_per_task: int = 0
    array_parallelism: int = 256  # tasks of one array running at once at most
    scratch: str = ".husai-scratch"  # must be on storage the tasks' nodes share
    poll_s: float = 2.0  # how often the stage looks for finished tasks
    setup: list[str] = field(default_factory=list)  # shell lines run before each task
    python: str | None = None  # the command that starts Python in a task (null: this one)
    sbatch: dict[str, Any] = field(default_factory=dict)  # any further sbatch option

    def check(self, at: str) -> None:
        from husai.config import require

        require(self.time_min >= 1, f"{at}.time_min", self.time_min, "must be >= 1")
        if self.cpus_per_task is not None:
            require(
                self.cpus_per_task >= 1, f"{at}.cpus_per_task", self.cpus_per_task, "must be >= 1"
            )
        require(self.mem_gb > 0, f"{at}.mem_gb", self.mem_gb, "must be > 0")
        require(self.gpus_per_task >= 0, f"{at}.gpus_per_task", self.gpus_per_task, "must be >= 0")
        require(
            self.array_parallelism >= 1,
            f"{at}.array_parallelism",
            self.array_parallelism,
            "must be >= 1",
        )
        require(bool(self.scratch), f"{at}.scratch", self.scratch, "must be a folder")
        require(self.poll_s > 0, f"{at}.poll_s", self.poll_s, "must be > 0")


@dataclass(frozen=True)
class ClusterConfig:
    executor: Literal["local", "slurm"] = "local"
    slurm: SlurmOptions = field(default_factory=SlurmOptions)


def cluster_config(environ: Mapping[str, str] | None = None) -> ClusterConfig:
    """The executor and cluster options: ``HUSAI_CLUSTER`` (a YAML file; it must exist when
    set), else ``cluster.yaml`` when present, else the defaults (local); then
    ``HUSAI_EXECUTOR``, when set, replaces the file's ``executor``."""
    import dataclasses

    from husai.config import parse_section
    from stages._common import read_yaml

    env = os.environ if environ is None else environ
    named = env.get("HUSAI_CLUSTER")
    path = Path(named) if named else CLUSTER_FILE
    if named and not path.is_file():
        raise HusaiError(f"HUSAI_CLUSTER={named}: no such file")
    raw = read_yaml(path) if path.is_file() else None
    try:
        config = parse_section(ClusterConfig, raw or {}, "")
    except ParamError as err:
        raise HusaiError(f"{path}: {err}") from None
    chosen = env.get("HUSAI_EXECUTOR")
    if chosen:
        if chosen not in EXECUTORS:
            raise HusaiError(
                f"HUSAI_EXECUTOR={chosen}: unknown executor (known: {', '.join(EXECUTORS)})"
            )
        config = dataclasses.replace(config, executor=chosen)
    return config


@dataclass(frozen=True)
class Unit:
    """One independent piece of a stage: ``fn(*args, on_progress=...)`` gives its result.

    ``fn`` must be a module-level function (a SLURM task imports it by name) and the result
    picklable. ``on_progress`` is the training callback of :func:`husai.sae.train_saes` when
    the unit runs in the stage's process, and None in a SLURM task.
    """

    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


def inputs_digest(params: Path, inputs: Sequence[Path]) -> str:
    """sha256 over the params file's and every input's DVC hash (:mod:`stages._inputs`),
    each beside its path."""
    from stages._inputs import dir_md5, file_md5

    h = hashlib.sha256()
    for path in (params, *inputs):
        md5 = dir_md5(path) if path.is_dir() else file_md5(path)
        h.update(f"{path.as_posix()}\0{md5}\n".encode())
    return h.hexdigest()


def _units(n: int) -> str:
    return f"{n} unit{'' if n == 1 else 's'}"


def _run_task(
    fn: Callable[..., Any], args: tuple[Any, ...], device: str, threads: int, result: str
) -> None:
    """A SLURM task: the stage's torch setup, the unit, its result written atomically."""
    from husai.determinism import configure
    from stages._common import write_bytes

    configure(device, threads)
    value = fn(*args, on_progress=None)
    write_bytes(Path(result), pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


class Executor:
    """Runs a stage's units (:func:`executor` makes one)."""

    def __init__(
        self, config: ClusterConfig, label: str, params: Path, inputs: Sequence[Path], runtime: Any
    ) -> None:
        self.config = config
        self.label = label  # <stage>@<instance>: messages and the scratch folder's name
        self.params = params
        self.inputs = tuple(inputs)
        self.device, self.threads = runtime.device, runtime.threads
        self.scratch = Path(config.slurm.scratch).resolve() / label

    @property
    def kind(self) -> str:
        return self.config.executor

    def run(
        self,
        units: Sequence[Unit],
        bar: Progress | None = None,
        progress_for: Callable[[Unit], AbstractContextManager[OnProgress]] | None = None,
        on_result: Callable[[Unit, Any], None] | None = None,
    ) -> dict[str, Any]:
        """Every unit's result, by name, in the units' order. ``progress_for(unit)`` gives
        the training callback of a unit run in this process (default: none);
        ``on_result(unit, result)`` is called for each unit in order once its result is in.
        """
        names = [u.name for u in units]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.label}: unit names repeat: {names}")  # a bug of the stage
        if self.kind == "local":
            if os.environ.get(SUBMIT_ONLY):
                raise HusaiError(f"{SUBMIT_ONLY} is set, but the executor is local")
            results = {}
            for unit in units:
                with (progress_for or (lambda _u: nullcontext(None)))(unit) as on_progress:
                    results[unit.name] = unit.fn(*unit.args, on_progress=on_progress)
                if on_result is not None:
                    on_result(unit, results[unit.name])
            return results
        results = _SlurmRun(self, units, bar).results(submit_only=bool(os.environ.get(SUBMIT_ONLY)))
        if on_result is not None:
            for unit in units:
                on_result(unit, results[unit.name])
        return results

    def clear(self) -> None:
        """Remove this stage run's scratch folder (after its outputs are written)."""
        if self.kind == "slurm":
            shutil.rmtree(self.scratch, ignore_errors=True)


@contextmanager
def executor(
    stage: str,
    instance: str,
    *,
    params: Path,
    inputs: Sequence[Path],
    runtime: Any,
) -> Iterator[Executor]:
    """The executor of one stage run (``runtime``: params ``runtime``, the device and
    threads each task sets up); its scratch folder is removed when the block ends without
    an error (write the stage's outputs inside the block)."""
    label = f"{stage}@{instance}" if instance else stage
    ex = Executor(cluster_config(), label, params, inputs, runtime)
    yield ex
    ex.clear()


# ----------------------------------------------------------------------------- slurm


class _SlurmRun:
    """Submit the units that have no result yet, wait, read every result."""

    def __init__(self, ex: Executor, units: Sequence[Unit], bar: Progress | None) -> None:
        self.ex = ex
        self.units = list(units)
        self.bar = bar
        self.opts = ex.config.slurm
        for tool in ("sbatch", "squeue", "scancel"):
            if shutil.which(tool) is None:
                raise HusaiError(
                    f"{ex.label}: the slurm executor needs {tool}, which is not on PATH "
                    "(run on a SLURM login node, or HUSAI_EXECUTOR=local)"
                )
        digest = inputs_digest(ex.params, ex.inputs)[:16]
        ex.scratch.mkdir(parents=True, exist_ok=True)
        self.result_path = {u.name: ex.scratch / f"{u.name}.{digest}.pkl" for u in units}
        self.job_path = {u.name: ex.scratch / f"{u.name}.{digest}.job" for u in units}

    # -- queue

    def _queued(self) -> set[str] | None:
        """Job ids (``<array>_<task>``) of this user's jobs still in the queue; None when
        squeue did not answer (then nothing is judged lost)."""
        proc = subprocess.run(
            ["squeue", "--noheader", "--array", "--me", "--format=%i"],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            return None
        return {line.strip() for line in proc.stdout.splitlines() if line.strip()}

    def _paths(self, job_id: str) -> Any:
        from submitit.core.utils import JobPaths

        return JobPaths(self.ex.scratch / "logs", job_id=job_id)

    def _submit(self, units: list[Unit]) -> dict[str, str]:
        import logging

        import submitit

        # submitit warns on every status call where sacct has no accounting storage; the
        # stage watches the queue and the result files itself
        logging.getLogger("submitit").setLevel(logging.ERROR)
        opts = self.opts
        python = {"slurm_python": opts.python} if opts.python else {}
        ex = submitit.AutoExecutor(folder=self.ex.scratch / "logs", cluster="slurm", **python)
        extra = dict(opts.sbatch)
        if opts.gpus_per_task:
            extra.setdefault("gpus_per_task", opts.gpus_per_task)
        params: dict[str, Any] = {
            "name": f"husai-{self.ex.label}",
            "timeout_min": opts.time_min,
            "cpus_per_task": opts.cpus_per_task or self.ex.threads,
            "mem_gb": opts.mem_gb,
            "slurm_array_parallelism": opts.array_parallelism,
            "slurm_setup": list(opts.setup),
            "slurm_additional_parameters": extra,
        }
        if opts.partition:
            params["slurm_partition"] = opts.partition
        ex.update_parameters(**params)
        try:
            jobs = ex.map_array(
                _run_task,
                [u.fn for u in units],
                [u.args for u in units],
                [self.ex.device] * len(units),
                [self.ex.threads] * len(units),
                [str(self.result_path[u.name]) for u in units],
            )
        except Exception as err:  # sbatch refused the array: its message, one line
            lines = [s for s in str(err).strip().splitlines() if s.strip()]
            raise HusaiError(
                f"{self.ex.label}: sbatch refused the array: {lines[-1] if lines else err!r}"
            ) from None
        ids = {}
        for unit, job in zip(units, jobs, strict=True):
            ids[unit.name] = job.job_id
            self.job_path[unit.name].write_text(job.job_id + "\n")
        return ids

    # -- results

    def _failure(self, name: str, job_id: str) -> str:
        """Why task ``job_id`` of unit ``name`` left the queue without a result."""
        paths = self._paths(job_id)
        # submitit's own record of an exception in the task: ("error", traceback)
        pkl = paths.result_pickle
        reason = "it left the queue without a result (time limit, memory or node failure?)"
        if pkl.is_file():
            try:
                with open(pkl, "rb") as fh:
                    outcome, trace = pickle.load(fh)
                if outcome == "error":
                    last = [s for s in str(trace).strip().splitlines() if s.strip()]
                    reason = last[-1].strip() if last else "it raised an error"
            except Exception:
                pass
        return f"unit {name} (job {job_id}): {reason}; log: {paths.stderr}"

    def results(self, submit_only: bool = False) -> dict[str, Any]:
        """Every unit's result; with ``submit_only``, submit what is neither finished nor
        queued and stop (:class:`stages._common.Deferred`)."""
        from stages._common import Deferred, console

        done = {u.name for u in self.units if self.result_path[u.name].is_file()}
        queued = self._queued() or set()
        attached: dict[str, str] = {}
        for u in self.units:
            path = self.job_path[u.name]
            if u.name not in done and path.is_file():
                job_id = path.read_text().strip()
                if job_id in queued:
                    attached[u.name] = job_id
        to_submit = [u for u in self.units if u.name not in done and u.name not in attached]
        if done or attached:
            console.print(
                f"{self.ex.label}: {len(done)} of {len(self.units)} units already finished, "
                f"{len(attached)} still queued (scratch {self.ex.scratch})"
            )
        ids = {**attached, **(self._submit(to_submit) if to_submit else {})}
        if to_submit:
            array = ids[to_submit[0].name].partition("_")[0]
            console.print(
                f"{self.ex.label}: submitted {_units(len(to_submit))} as SLURM array {array}"
            )
        if submit_only:
            raise Deferred(
                f"{_units(len(to_submit))} submitted, {len(attached)} queued before, "
                f"{len(done)} finished; `dvc repro` collects them"
            )
        task = None
        if self.bar is not None:
            task = self.bar.add_task(
                f"{self.ex.label}: SLURM units", total=len(self.units), completed=len(done)
            )
        failed: dict[str, str] = {}
        gone: dict[str, int] = {}
        waiting = [u.name for u in self.units if u.name not in done]
        try:
            while waiting:
                time.sleep(self.opts.poll_s)
                queued_now = self._queued()
                still = []
                for name in waiting:
                    if self.result_path[name].is_file():
                        done.add(name)
                        if task is not None:
                            self.bar.advance(task)  # type: ignore[union-attr]
                    elif queued_now is not None and ids[name] not in queued_now:
                        # out of the queue: give the shared file system one more poll
                        gone[name] = gone.get(name, 0) + 1
                        if gone[name] >= 2:
                            failed[name] = self._failure(name, ids[name])
                        else:
                            still.append(name)
                    else:
                        still.append(name)
                waiting = still
        except KeyboardInterrupt:
            pending = [ids[n] for n in waiting]
            if pending:
                subprocess.run(["scancel", *pending], capture_output=True)
                for name in waiting:
                    self.job_path[name].unlink(missing_ok=True)
            raise
        finally:
            if task is not None:
                self.bar.remove_task(task)  # type: ignore[union-attr]
        if failed:
            first = next(u.name for u in self.units if u.name in failed)
            for name in failed:
                self.job_path[name].unlink(missing_ok=True)
            raise HusaiError(
                f"{self.ex.label}: {len(failed)} of {len(self.units)} units failed on SLURM; "
                f"{failed[first]} (a rerun submits only the failed units; the finished ones "
                f"stay in {self.ex.scratch})"
            )
        out = {}
        for u in self.units:
            with open(self.result_path[u.name], "rb") as fh:
                out[u.name] = pickle.load(fh)
        return out
