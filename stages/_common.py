"""What every stage shares: params, atomic outputs, one-line errors, timing log.

A stage validates all params and checks its inputs *before* it writes anything,
checks every metric JSON against its record of the metrics contract
(:mod:`husai.records`) before writing it, writes every output through a
temporary file (or folder) and an atomic rename,
and never writes wall-clock times or host names into a versioned output: those
go to ``logs/timings.jsonl``, which git and DVC ignore.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from husai.config import Params, parse_params
from husai.errors import HusaiError
from husai.records import validate_json
from husai.serialize import csv_bytes, json_bytes

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False)

TIMINGS_LOG = Path("logs/timings.jsonl")

F = TypeVar("F", bound=Callable[..., Any])


# ----------------------------------------------------------------------------- params


def read_yaml(path: Path) -> Any:
    from ruamel.yaml import YAML, YAMLError

    if not path.is_file():
        raise HusaiError(f"params file not found: {path}")
    try:
        return YAML(typ="safe", pure=True).load(path.read_text())
    except YAMLError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise HusaiError(f"{path} is not valid YAML: {first}") from None


def load_params(path: Path) -> Params:
    """Read and validate params.yaml (every section, so a bad value fails at once)."""
    raw = read_yaml(path)
    if raw is None:
        raise HusaiError(
            f"{path} is empty: it must hold the pipeline's params (start from the "
            "repository's params.yaml)"
        )
    return parse_params(raw)


def setup(params: Params):
    """Deterministic torch on the configured device; returns the torch.device."""
    from husai.determinism import configure

    return configure(params.runtime.device, params.runtime.threads)


# ----------------------------------------------------------------------------- atomic output


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary sibling, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: Path, obj: Any, record: Any) -> None:
    """:func:`husai.serialize.json_bytes` of ``obj`` written atomically to ``path``, once
    those bytes are checked against ``record`` (:func:`husai.records.validate_json`; a
    :class:`husai.records.RecordError` naming the json path is a bug of the stage, and
    nothing is written)."""
    data = json_bytes(obj)
    validate_json(data, record, path.as_posix())
    write_bytes(path, data)


def write_csv(path: Path, columns: list[str], rows: Iterable[Iterable[Any]]) -> None:
    """:func:`husai.serialize.csv_bytes` (a small CSV for ``dvc plots``), atomically."""
    write_bytes(path, csv_bytes(columns, rows))


def write_dir(path: Path, files: Mapping[str, bytes]) -> None:
    """Replace folder ``path`` by one holding exactly ``files``, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        for name, data in files.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------- stage wrapper


def _log_timing(stage: str, seconds: float, ok: bool) -> None:
    try:
        TIMINGS_LOG.parent.mkdir(parents=True, exist_ok=True)
        entry = {
            "stage": stage,
            "seconds": round(seconds, 2),
            "ok": ok,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": platform.node(),
        }
        with open(TIMINGS_LOG, "a") as fh:
            fh.write(json.dumps(entry) + "\n")
    except OSError:
        pass  # timings are a convenience, never a reason to fail a stage


class Deferred(Exception):
    """The stage's units are submitted (``husai submit``) and it stops without writing:
    ``dvc repro`` runs it again later and collects them. The message says what was sent."""


def stage(name: str) -> Callable[[F], F]:
    """Wrap a stage command: one-line errors (exit 2) and a timing entry in the log."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                out = fn(*args, **kwargs)
            except HusaiError as err:
                _log_timing(name, time.perf_counter() - start, ok=False)
                # the message is text, not markup: "[d_sae=4, d_in=9]" must print as is
                err_console.print(
                    f"[bold red]husai {name}: error:[/] {escape(str(err))}", soft_wrap=True
                )
                raise typer.Exit(code=2) from None
            except KeyboardInterrupt:
                err_console.print(f"husai {name}: interrupted")
                raise typer.Exit(code=130) from None
            except Deferred as why:
                console.print(f"husai {name}: {escape(str(why))}")
                return None
            seconds = time.perf_counter() - start
            _log_timing(name, seconds, ok=True)
            console.print(f"[dim]husai {name}: done in {seconds:.1f} s[/]")
            return out

        return wrapper  # type: ignore[return-value]

    return decorate


PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="params.yaml to read.")
