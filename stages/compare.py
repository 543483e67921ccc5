"""``husai compare SAE_A SAE_B [SAE_C ...]``: how much SAEs agree, beside chance.

Not a pipeline stage: a tool for any SAEs that SAELens loads (``SAE.load_from_disk``,
any architecture, different widths allowed), ours included. It prints a table of every
pair (:mod:`husai.compare`: PWMCC both ways, Hungarian MCC, the Paulo & Belrose shared
fraction, subspace overlap, each beside the isotropic reference of the same shapes;
with three SAEs or more the mean and the bootstrap CI over pairs); with ``--activations
FILE`` (rows ``[N, d_in]``, ``.npy`` or ``.safetensors``) also the live-latent numbers (each
SAE's latents that fire on some row, through SAELens's own ``encode``: live PWMCC, Hungarian
MCC and shared fraction beside as many random atoms, isotropic, in the data's principal
subspace and random activation rows; live, dead and distinct counts); and with ``--json OUT``
writes the whole result, the matching included, with its provenance (sha256 of every
file of each SAE folder, the versions of the libraries, the command), a
:class:`husai.records.CompareResult` (schema version
:data:`husai.compare.COMPARE_SCHEMA_VERSION`). A missing folder, a folder SAELens cannot
load, or SAEs of different ``d_in`` stop it with a one-line error.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import typer

from stages._common import console, err_console, write_bytes


def sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def load_sae(path: Path):
    """One SAELens SAE folder: (:class:`husai.compare.SAEAtoms` named by the path, the
    SAELens SAE)."""
    from husai.compare import SAEAtoms
    from husai.errors import HusaiError

    if not path.exists():
        raise HusaiError(f"{path}: no such file or folder")
    if not path.is_dir() or not (path / "cfg.json").is_file():
        raise HusaiError(f"{path}: not an SAELens SAE folder (it has no cfg.json)")
    from sae_lens import SAE

    try:
        sae = SAE.load_from_disk(str(path), device="cpu")
    except Exception as err:  # SAELens's own errors are of many kinds
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise HusaiError(
            f"{path}: SAELens cannot load it ({type(err).__name__}: {reason})"
        ) from None
    return SAEAtoms.from_weights(str(path), sae.W_enc, sae.W_dec), sae


def load_activations(path: Path, d_in: int):
    """Activation rows ``[N, d_in]`` from a ``.npy`` file or a ``.safetensors`` file (its
    one tensor, or the one named ``x`` or ``activations``), as float32."""
    import numpy as np
    import torch

    from husai.errors import HusaiError

    if not path.is_file():
        raise HusaiError(f"{path}: no such file")
    try:
        if path.suffix == ".npy":
            x = torch.from_numpy(np.load(path, allow_pickle=False))
        elif path.suffix == ".safetensors":
            from safetensors.torch import load_file

            tensors = load_file(path)
            names = [n for n in ("x", "activations") if n in tensors]
            if len(tensors) != 1 and not names:
                raise HusaiError(
                    f"{path}: holds {sorted(tensors)}; give one tensor, or name it x or activations"
                )
            x = tensors[names[0]] if names else next(iter(tensors.values()))
        else:
            raise HusaiError(f"{path}: activations must be a .npy or .safetensors file")
    except HusaiError:
        raise
    except Exception as err:
        raise HusaiError(f"{path}: cannot read it ({type(err).__name__})") from None
    if x.ndim != 2 or x.shape[1] != d_in or x.shape[0] < 2:
        raise HusaiError(
            f"{path}: activations of shape {tuple(x.shape)}, expected [N >= 2, {d_in}]"
        )
    x = x.to(torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise HusaiError(f"{path}: the activations hold NaN or inf values")
    return x


def live_mask(sae, x, chunk: int = 4096):
    """The latents of a SAELens SAE that are non-zero on some row of ``x``."""
    import torch

    live = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    with torch.no_grad():
        for start in range(0, x.shape[0], chunk):
            live |= (sae.encode(x[start : start + chunk]) != 0).any(0)
    return live


def provenance(paths: list[Path]) -> dict[str, Any]:
    import importlib.metadata as md

    files = {}
    for p in paths:
        if p.is_file():
            files[str(p)] = sha256(p)
            continue
        for f in sorted(p.rglob("*")):
            if f.is_file():
                files[f"{p}/{f.relative_to(p).as_posix()}"] = sha256(f)
    versions = {}
    for name, dist in (
        ("husai", "husai"),
        ("torch", "torch"),
        ("sae_lens", "sae-lens"),
        ("scipy", "scipy"),
        ("numpy", "numpy"),
    ):
        try:
            versions[name] = md.version(dist)
        except md.PackageNotFoundError:
            versions[name] = "unknown"
    return {"files": files, "versions": versions, "command": ["husai", *sys.argv[1:]]}


def _cell(value: float | None, ref: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" + ("" if ref is None else f" [dim]({ref:.3f})[/]")


def table(result: dict[str, Any]):
    from rich.table import Table

    t = Table(
        title=f"SAE agreement ({result['options']['cosine']} cosine; isotropic reference in "
        "parentheses)"
    )
    for col in ("A", "B", "PWMCC A->B", "PWMCC B->A", "PWMCC", "Hungarian MCC", "shared"):
        t.add_column(col, justify="left" if col in ("A", "B") else "right")
    t.add_column("subspace overlap", justify="right")
    for p in result["pairs"]:
        iso = p["isotropic"]
        ranks = sorted(p["subspace_overlap"], key=int)
        top = ranks[-1] if ranks else None
        t.add_row(
            p["a"],
            p["b"],
            _cell(p["pwmcc_ab"], iso["pwmcc_ab"]),
            _cell(p["pwmcc_ba"], iso["pwmcc_ba"]),
            _cell(p["pwmcc"], iso["pwmcc"]),
            _cell(p["hungarian_mcc"], iso["hungarian_mcc"]),
            _cell(p["shared_fraction"], iso["shared_fraction"]),
            "n/a"
            if top is None
            else f"r {top}: {p['subspace_overlap'][top]:.3f} "
            f"[dim]({p['subspace_random'][top]:.3f})[/]",
        )
    return t


def main(
    saes: list[Path] = typer.Argument(..., help="Two or more SAELens SAE folders."),
    threshold: float = typer.Option(
        0.7, help="Shared latent: both matched cosines >= this (Paulo & Belrose 2025)."
    ),
    signed: bool = typer.Option(
        False, "--signed", help="Match on the signed cosine (Paulo & Belrose) instead of |cos|."
    ),
    seed: int = typer.Option(0, help="Seed of the isotropic reference dictionaries."),
    activations: Path | None = typer.Option(
        None,
        "--activations",
        help="Activation rows [N, d_in] (.npy or .safetensors): adds the live-latent numbers.",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the whole result here."),
) -> None:
    """Compare SAEs: PWMCC, Hungarian MCC, shared fraction and subspace overlap, beside chance."""
    from husai.errors import HusaiError

    try:
        run(saes, threshold, signed, seed, json_out, activations)
    except HusaiError as err:
        err_console.print(f"[bold red]husai compare: error:[/] {err}", soft_wrap=True)
        raise typer.Exit(code=2) from None


def run(
    saes: list[Path],
    threshold: float,
    signed: bool,
    seed: int,
    json_out: Path | None,
    activations: Path | None = None,
):
    from husai.compare import common_d_in, compare
    from husai.errors import HusaiError
    from husai.records import CompareResult, validate_json
    from husai.serialize import json_bytes

    if len(saes) < 2:
        raise HusaiError(f"give at least two SAE folders, got {len(saes)}")
    if not 0.0 < threshold <= 1.0:
        raise HusaiError(f"--threshold = {threshold}: must be in (0, 1]")
    if json_out is not None and (
        json_out.is_dir() or (json_out.parent.exists() and not json_out.parent.is_dir())
    ):
        raise HusaiError(f"--json {json_out}: not a file path that can be written")
    loaded = [load_sae(p) for p in saes]
    atoms = [a for a, _ in loaded]
    lives = x = None
    if activations is not None:
        x = load_activations(activations, common_d_in(atoms))
        lives = [live_mask(sae, x) for _, sae in loaded]
    result = compare(atoms, threshold=threshold, absolute=not signed, seed=seed, lives=lives, x=x)
    console.print(table(result))
    if result["summary"] is not None:
        for key, s in result["summary"].items():
            tr, iso = s["trained"], s["isotropic"]
            ci = "" if tr["ci"] is None else f" [{tr['ci'][0]:.3f}, {tr['ci'][1]:.3f}]"
            console.print(
                f"{key}: mean over pairs {tr['mean']:.3f}{ci} (isotropic {iso['mean']:.3f})"
            )
    if "live" in result:
        lv = result["live"]
        counts = ", ".join(
            f"{s['name']}: {s['n_live']} live of {s['d_sae']} ({s['distinct_live']} distinct)"
            for s in result["saes"]
        )
        sub = lv["subspace_live_pwmcc"]
        console.print(
            f"live latents only (|cos|): {counts}. Live PWMCC {lv['live_pwmcc']['mean']:.3f} "
            f"(as many isotropic atoms {lv['isotropic_live_pwmcc']['mean']:.3f}, in the data's "
            f"principal subspace {'n/a' if sub is None else format(sub['mean'], '.3f')}, "
            f"random activation rows {lv['data_live_pwmcc']['mean']:.3f})"
        )
    if json_out is not None:
        inputs = [*saes, *([activations] if activations is not None else [])]
        try:
            data = json_bytes({**result, "provenance": provenance(inputs)})
            validate_json(data, CompareResult, str(json_out))
            write_bytes(json_out, data)
        except OSError as err:
            raise HusaiError(f"{err.filename or json_out}: {err.strerror or err}") from None
        console.print(f"husai compare: -> {json_out}")
