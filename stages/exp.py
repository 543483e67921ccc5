"""``husai exp-summary``: a readable table of ``dvc exp`` experiments.

``dvc exp show`` prints every param and metric column and is far too wide for this
project. This command reads ``dvc exp show --json`` (it runs it, or reads a saved
copy with ``--input``) and prints one row per experiment and SAE configuration:
the params that differ from the experiment's baseline commit, the stability
metrics of ``metrics/stability/modular.json`` beside their random and untrained baselines,
and reconstruction and sparsity averaged over seeds from ``metrics/saes/modular.json``.

It is not a DVC stage: it writes nothing and changes nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from husai.errors import HusaiError
from stages._common import console, err_console

STABILITY = "metrics/stability/modular.json"
SAES = "metrics/saes/modular.json"


@dataclass(frozen=True)
class Experiment:
    """One row source: a commit, the workspace or an experiment on top of a commit."""

    name: str
    rev: str
    baseline: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    changed: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    experiment: str
    changed: str
    config: str
    pwmcc: float | None
    pwmcc_ci: tuple[float | None, float | None] | None
    pwmcc_std: float | None
    random_pwmcc: float | None
    untrained_pwmcc: float | None
    ratio: float | None
    subspace_pwmcc: float | None
    subspace_ratio: float | None
    hungarian_mcc: float | None
    shared_fraction: float | None
    l0: float | None
    explained_variance: float | None


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _files(data: Mapping[str, Any] | None, kind: str) -> dict[str, Any]:
    """{file: content} of one ``params``/``metrics`` block of ``dvc exp show --json``."""
    block = (data or {}).get(kind) or {}
    return {path: (entry or {}).get("data") or {} for path, entry in block.items()}


def _record(node: Mapping[str, Any], baseline: str, fallback: str) -> Experiment | None:
    data = node.get("data")
    if not data:  # an experiment that failed or is still queued
        return None
    params: dict[str, Any] = {}
    for path, content in _files(data, "params").items():
        scope = "" if path == "params.yaml" else f"{path}:"
        params.update(flatten(content, scope))
    rev = str(node.get("rev") or data.get("rev") or "")
    name = node.get("name") or (rev if rev == "workspace" else rev[:7]) or fallback
    return Experiment(
        name=str(name), rev=rev, baseline=baseline, params=params, metrics=_files(data, "metrics")
    )


def experiments(exp_show: list[Mapping[str, Any]]) -> list[Experiment]:
    """Every commit, the workspace and every experiment in ``dvc exp show --json``.

    Experiments carry ``changed``: the params whose value differs from the commit
    they were run on (the workspace is compared with the first commit listed, HEAD).
    """
    if not isinstance(exp_show, list):
        raise HusaiError("dvc exp show --json: expected a list of commits")
    out: list[Experiment] = []
    commits = [n for n in exp_show if n.get("rev") != "workspace"]
    head = _record(commits[0], "", "HEAD") if commits else None
    for node in exp_show:
        base = _record(node, "", "?")
        if base is None:
            continue
        if node.get("rev") == "workspace":
            ref = head.params if head else base.params
            out.append(_with_changes(base, ref))
            continue
        out.append(base)
        for group in node.get("experiments") or []:
            for exp_node in group.get("revs") or []:
                exp = _record(exp_node, base.name, "exp")
                if exp is not None:
                    out.append(_with_changes(exp, base.params))
    return out


def _with_changes(exp: Experiment, reference: Mapping[str, Any]) -> Experiment:
    changed = {k: v for k, v in exp.params.items() if reference.get(k) != v}
    changed.update({k: None for k in reference if k not in exp.params})
    return Experiment(exp.name, exp.rev, exp.baseline, exp.params, exp.metrics, changed)


def _number(value: Any, key: str = "mean") -> float | None:
    """A number, or the ``key`` of a {mean, std, ci} summary."""
    if isinstance(value, Mapping):
        value = value.get(key, value.get("ratio"))  # ratios are {ratio, ci, ...}
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _ci(value: Any) -> tuple[float | None, float | None] | None:
    if (
        isinstance(value, Mapping)
        and isinstance(value.get("ci"), list | tuple)
        and len(value["ci"]) == 2
    ):
        low, high = value["ci"]
        return _number(low), _number(high)
    return None


def _seed_means(saes: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Per configuration: the mean over seeds of each SAE metric in metrics/saes/modular.json."""
    sums: dict[str, dict[str, list[float]]] = {}
    if isinstance(saes.get("saes"), Mapping):  # {"saes": {"<config>/seed<seed>": entry}, ...}
        saes = saes["saes"]
    for entry in saes.values():
        if not isinstance(entry, Mapping) or "config" not in entry:
            continue
        for key, value in (entry.get("metrics") or {}).items():
            number = _number(value)
            if number is not None:
                sums.setdefault(str(entry["config"]), {}).setdefault(key, []).append(number)
    return {c: {k: sum(v) / len(v) for k, v in m.items()} for c, m in sums.items()}


def _format_changes(changed: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(changed.items())) or "-"


def rows(exps: list[Experiment], configs: set[str] | None = None) -> Iterator[Row]:
    """One row per (experiment, SAE configuration in its stability metrics)."""
    for exp in exps:
        stability = exp.metrics.get(STABILITY) or {}
        recon = _seed_means(exp.metrics.get(SAES) or {})
        names = [n for n, v in stability.items() if isinstance(v, Mapping)] or sorted(recon)
        for config in names:
            if configs and config not in configs:
                continue
            s = stability.get(config) or {}
            r = recon.get(config, {})
            yield Row(
                experiment=exp.name if not exp.baseline else f"{exp.name} ({exp.baseline})",
                changed=_format_changes(exp.changed),
                config=config,
                pwmcc=_number(s.get("pwmcc")),
                pwmcc_ci=_ci(s.get("pwmcc")),
                pwmcc_std=_number(s.get("pwmcc"), "std"),
                random_pwmcc=_number(s.get("random_pwmcc")),
                untrained_pwmcc=_number(s.get("untrained_pwmcc")),
                ratio=_number(s.get("pwmcc_ratio_to_random"), "ratio"),
                subspace_pwmcc=_number(s.get("subspace_random_pwmcc")),
                subspace_ratio=_number(s.get("pwmcc_ratio_to_subspace"), "ratio"),
                hungarian_mcc=_number(s.get("hungarian_mcc")),
                shared_fraction=_number(s.get("shared_fraction")),
                l0=r.get("l0"),
                explained_variance=r.get("explained_variance"),
            )


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(summary: list[Row]) -> Table:
    t = Table(
        title="HUSAI experiments: stability across seeds beside its baselines "
        "(random: isotropic; subspace: random in the activations' principal span)",
        show_lines=False,
        header_style="bold",
    )
    for col, justify in [
        ("experiment", "left"),
        ("changed params", "left"),
        ("config", "left"),
        ("L0", "right"),
        ("EV", "right"),
        ("PWMCC", "right"),
        ("random", "right"),
        ("untrained", "right"),
        ("ratio", "right"),
        ("subspace", "right"),
        ("ratio", "right"),
        ("Hung. MCC", "right"),
        ("shared", "right"),
    ]:
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in summary:
        if r.pwmcc_ci:
            spread = f" [{_fmt(r.pwmcc_ci[0])}, {_fmt(r.pwmcc_ci[1])}]"
        else:  # dvc exp show drops lists, so the CI is there only in a saved metrics file
            spread = "" if r.pwmcc_std is None else f" ± {_fmt(r.pwmcc_std)}"
        t.add_row(
            r.experiment,
            r.changed,
            r.config,
            _fmt(r.l0, 1),
            _fmt(r.explained_variance),
            _fmt(r.pwmcc) + spread,
            _fmt(r.random_pwmcc),
            _fmt(r.untrained_pwmcc),
            _fmt(r.ratio, 2),
            _fmt(r.subspace_pwmcc),
            _fmt(r.subspace_ratio, 2),
            _fmt(r.hungarian_mcc),
            _fmt(r.shared_fraction),
        )
    return t


def _dvc() -> str:
    """The dvc of this environment (beside the running Python), else the one on PATH."""
    local = Path(sys.executable).parent / "dvc"
    return str(local) if local.is_file() else "dvc"


def _exp_show_json(source: Path | None, extra: list[str]) -> list[Mapping[str, Any]]:
    if source is not None:
        if not source.is_file():
            raise HusaiError(f"--input {source}: file not found")
        text = source.read_text()
    else:
        try:
            proc = subprocess.run(
                [_dvc(), "exp", "show", "--json", *extra], capture_output=True, text=True
            )
        except OSError as err:
            raise HusaiError(
                f"cannot run dvc ({err.strerror}); is the environment active?"
            ) from None
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            raise HusaiError(f"dvc exp show --json: {last}")
        text = proc.stdout
    try:
        return json.loads(text or "[]")
    except json.JSONDecodeError as err:
        raise HusaiError(f"dvc exp show --json output is not JSON ({err.msg})") from None


def main(
    input: Path | None = typer.Option(
        None, "--input", help="A saved `dvc exp show --json`; default: run it here."
    ),
    config: list[str] = typer.Option(
        [], "--config", "-c", help="Only these SAE configurations (repeatable)."
    ),
    all_commits: bool = typer.Option(
        False, "--all-commits", "-A", help="Passed to dvc exp show: experiments of every commit."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON, not a table."),
) -> None:
    """Summarise `dvc exp` experiments: stability metrics beside their baselines."""
    try:
        exps = experiments(_exp_show_json(input, ["-A"] if all_commits else []))
        summary = list(rows(exps, set(config) or None))
    except HusaiError as err:
        err_console.print(f"[bold red]husai exp-summary: error:[/] {err}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    if as_json:
        print(json.dumps([r.__dict__ for r in summary], indent=2))
        return
    if not summary:
        console.print("no experiments with SAE metrics (run `dvc repro` or `dvc exp run` first)")
        return
    wide = console if console.is_terminal else Console(width=240, highlight=False)
    wide.print(table(summary))
