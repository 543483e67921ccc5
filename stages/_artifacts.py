"""Reading and writing the pipeline's datasets and checkpoints (file formats live here)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from husai.errors import HusaiError
from husai.serialize import from_bytes, to_bytes
from husai.task import ModularAddition
from stages._common import write_bytes, write_dir
from stages._inputs import read_input, require_input, restore_hint

MODEL_WEIGHTS = "model.safetensors"
MODEL_CONFIG = "config.json"


# ----------------------------------------------------------------------------- checked reading


def _corrupt(path: Path, what: str) -> HusaiError:
    return HusaiError(f"{path} {what}: {restore_hint(path)}")


def load_tensors(
    path: Path, names: tuple[str, ...], meta_keys: tuple[str, ...] = (), finite: bool = True
) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and metadata of safetensors file ``path``, checked: readable, not
    truncated, holding ``names`` and ``meta_keys``, and (``finite``) no NaN or inf."""
    from safetensors import SafetensorError

    data = read_input(path)
    try:
        tensors, meta = from_bytes(data)
    except (SafetensorError, ValueError, OverflowError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise _corrupt(path, f"is not a readable safetensors file ({reason})") from None
    missing = [n for n in names if n not in tensors] + [k for k in meta_keys if k not in meta]
    if missing:
        raise _corrupt(
            path, f"lacks {', '.join(missing)} (not a file of this pipeline, or an old format)"
        )
    if finite:
        for name, tensor in tensors.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                bad = int((~torch.isfinite(tensor)).sum())
                raise HusaiError(
                    f"{path}: tensor {name} holds {bad} NaN or inf values (a "
                    f"diverged or corrupt result); {restore_hint(path)}"
                )
    return tensors, meta


def read_json(path: Path):
    """A JSON input file, checked (a one-line error names a missing or corrupt file)."""
    try:
        return json.loads(read_input(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _corrupt(path, f"is not valid JSON ({err})") from None


# ----------------------------------------------------------------------------- task


def save_task(path: Path, task: ModularAddition, frac_train: float, seed: int) -> None:
    tensors = {
        "tokens": task.tokens,
        "labels": task.labels,
        "train_idx": task.train_idx,
        "test_idx": task.test_idx,
    }
    write_bytes(path, to_bytes(tensors, {"p": task.p, "frac_train": frac_train, "seed": seed}))


def load_task(path: Path) -> ModularAddition:
    tensors, meta = load_tensors(path, ("tokens", "labels", "train_idx", "test_idx"), ("p",))
    return ModularAddition(
        meta["p"], tensors["tokens"], tensors["labels"], tensors["train_idx"], tensors["test_idx"]
    )


# ----------------------------------------------------------------------------- transformer


@dataclass(frozen=True)
class ModelSpec:
    """Arguments of :func:`husai.transformer.model_config`, saved beside the weights."""

    p: int
    d_model: int
    n_heads: int
    d_head: int
    d_mlp: int
    seed: int


def save_transformer(path: Path, spec: ModelSpec, state: dict[str, torch.Tensor]) -> None:
    config = json.dumps({"format": "husai-hooked-transformer-v1", **asdict(spec)}, indent=2) + "\n"
    write_dir(path, {MODEL_CONFIG: config.encode(), MODEL_WEIGHTS: to_bytes(state)})


def load_transformer(path: Path, device: torch.device | str = "cpu"):
    """The saved ``HookedTransformer`` (eval mode) and its spec."""
    from husai.transformer import build_model, model_config

    raw = read_json(path / MODEL_CONFIG)
    if not isinstance(raw, dict):
        raise _corrupt(path / MODEL_CONFIG, "is not a transformer config")
    raw.pop("format", None)
    try:
        spec = ModelSpec(**raw)
    except TypeError:
        raise _corrupt(
            path / MODEL_CONFIG, f"does not hold the keys {list(ModelSpec.__annotations__)}"
        ) from None
    model = build_model(model_config(device=str(device), **asdict(spec)))
    # TransformerLens's attention buffers hold -inf on purpose: check the parameters only
    state, _ = load_tensors(path / MODEL_WEIGHTS, (), finite=False)
    try:
        model.load_state_dict({k: v.to(device) for k, v in state.items()}, strict=True)
    except RuntimeError:
        raise _corrupt(
            path / MODEL_WEIGHTS, "does not match the model of its config.json"
        ) from None
    for name, param in model.named_parameters():
        if not bool(torch.isfinite(param).all()):
            raise HusaiError(
                f"{path / MODEL_WEIGHTS}: parameter {name} holds NaN or inf values; "
                f"{restore_hint(path / MODEL_WEIGHTS)}"
            )
    model.eval()
    return model, spec


# ----------------------------------------------------------------------------- activations


@dataclass(frozen=True)
class Activations:
    """The SAE training data: activations over the whole input grid plus the ground truth."""

    x: torch.Tensor  # [p*p, d] float32, row a*p+b
    a: torch.Tensor  # [p*p] int64
    b: torch.Tensor  # [p*p] int64
    gt_directions: torch.Tensor  # [n, d] float32, unit rows
    gt_frequency: torch.Tensor  # [n] int64
    gt_u: torch.Tensor
    gt_v: torch.Tensor
    gt_energy_share: torch.Tensor  # [n] float64
    plane_basis: torch.Tensor  # [P, 2, d] float64: husai.planes.Planes of the grid
    plane_frequency: torch.Tensor  # [P] int64
    plane_variable: torch.Tensor  # [P] int64 (index into husai.planes.VARIABLES)
    plane_share: torch.Tensor  # [P] float64
    p: int
    hook: str
    position: int
    key_frequencies: list[int]

    @property
    def d_in(self) -> int:
        return self.x.shape[1]

    def grid(self, values: torch.Tensor) -> torch.Tensor:
        """Reshape per-row values ``[p*p, ...]`` to the grid ``[p, p, ...]``."""
        return values.reshape(self.p, self.p, *values.shape[1:])


def save_activations(path: Path, acts: Activations) -> None:
    tensors = {
        "x": acts.x,
        "a": acts.a,
        "b": acts.b,
        "gt_directions": acts.gt_directions,
        "gt_frequency": acts.gt_frequency,
        "gt_u": acts.gt_u,
        "gt_v": acts.gt_v,
        "gt_energy_share": acts.gt_energy_share,
        "plane_basis": acts.plane_basis,
        "plane_frequency": acts.plane_frequency,
        "plane_variable": acts.plane_variable,
        "plane_share": acts.plane_share,
    }
    meta = {
        "p": acts.p,
        "hook": acts.hook,
        "position": acts.position,
        "key_frequencies": acts.key_frequencies,
    }
    write_bytes(path, to_bytes(tensors, meta))


def load_activations(path: Path) -> Activations:
    t, meta = load_tensors(
        path,
        (
            "x",
            "a",
            "b",
            "gt_directions",
            "gt_frequency",
            "gt_u",
            "gt_v",
            "gt_energy_share",
            "plane_basis",
            "plane_frequency",
            "plane_variable",
            "plane_share",
        ),
        ("p", "hook", "position", "key_frequencies"),
    )
    if t["x"].ndim != 2 or t["x"].shape[0] != meta["p"] ** 2:
        raise HusaiError(
            f"{path}: expected activations of shape [p*p, d], got {tuple(t['x'].shape)}"
        )
    return Activations(**t, **meta)


# ----------------------------------------------------------------------------- domains

TRUTH_PREFIX = "truth."


def domain_path(domain: str) -> Path:
    """Where stage ``activations@<name>`` (a transformer hook) or ``domain@<name>`` (a
    control) writes a domain's data."""
    return Path("data/domains") / f"{domain}.safetensors"


def save_domain(path: Path, data) -> None:
    """A control domain (:class:`husai.domains.DomainData`): ``x``, its ground truth
    (tensors ``truth.<name>``) and metadata (``domain`` and the generator's)."""
    tensors = {"x": data.x, **{TRUTH_PREFIX + k: v for k, v in data.truth.items()}}
    write_bytes(path, to_bytes(tensors, {"domain": data.name, **data.meta}))


def load_domain(path: Path, domain: str, transformer: bool):
    """A domain's SAE training data as :class:`husai.domains.DomainData`: a control
    domain's file of :func:`save_domain`, or (``transformer``) an activation dataset of
    stage ``activations@<domain>``, whose ground truth is its planes
    (:class:`husai.planes.Planes`) with each row's angle on each plane
    (:func:`husai.planes.plane_angles`)."""
    from husai.domains import DomainData

    if transformer:
        from husai.planes import plane_angles

        acts = load_activations(path)
        meta = {"hook": acts.hook, "position": acts.position, "p": acts.p}
        truth = {}
        if acts.plane_basis.shape[0] > 0:  # no plane holds 1% of the variance: no truth
            truth = {
                "planes": acts.plane_basis,
                "angles": plane_angles(
                    acts.a, acts.b, acts.p, acts.plane_frequency, acts.plane_variable
                ),
                "plane_frequency": acts.plane_frequency,
                "plane_variable": acts.plane_variable,
                "plane_share": acts.plane_share,
            }
        return DomainData(domain, acts.x, truth, meta)
    t, meta = load_tensors(path, ("x",), ("domain",))
    if meta["domain"] != domain or t["x"].ndim != 2:
        raise HusaiError(
            f"{path}: holds domain {meta['domain']!r} with x of shape {tuple(t['x'].shape)}, "
            f"expected domain {domain!r} with x [n, d_in] (run `dvc repro domain@{domain}`)"
        )
    truth = {k[len(TRUTH_PREFIX) :]: v for k, v in t.items() if k.startswith(TRUTH_PREFIX)}
    return DomainData(domain, t["x"], truth, {k: v for k, v in meta.items() if k != "domain"})


# ----------------------------------------------------------------------------- SAEs

SAE_CONFIG = "cfg.json"
SAE_WEIGHTS = "sae_weights.safetensors"


def sae_files(sae, prefix: str, metadata: dict | None = None) -> dict[str, bytes]:
    """SAELens folders ``<prefix>/seed<seed>/{cfg.json, sae_weights.safetensors}`` of every
    seed of a :class:`husai.sae.BatchedSAE`, as bytes for :func:`write_dir`.

    Deterministic: JSON in insertion order, safetensors without metadata.
    """
    from husai.sae.saelens import to_saelens

    files = {}
    for i, seed in enumerate(sae.seeds):
        cfg, state = to_saelens(sae, i, metadata)
        folder = f"{prefix}/seed{seed}" if prefix else f"seed{seed}"
        files[f"{folder}/{SAE_CONFIG}"] = (json.dumps(cfg, indent=2) + "\n").encode()
        files[f"{folder}/{SAE_WEIGHTS}"] = to_bytes(state)
    return files


def load_sae(path: Path, d_in: int | None = None):
    """One SAELens checkpoint folder as a batch of one SAE; ``d_in`` checks the width."""
    from husai.sae.saelens import from_saelens

    cfg = read_json(path / SAE_CONFIG)
    if not isinstance(cfg, dict):
        raise _corrupt(path / SAE_CONFIG, "is not an SAE config")
    if d_in is not None and int(cfg.get("d_in", -1)) != d_in:
        raise HusaiError(
            f"{path}: checkpoint has d_in = {cfg.get('d_in')} but the activations have width {d_in}"
        )
    state, _ = load_tensors(path / SAE_WEIGHTS, ())
    try:
        return from_saelens(cfg, state)
    except HusaiError as err:
        raise HusaiError(f"{path}: {err}") from None
    except (KeyError, TypeError, ValueError) as err:
        raise _corrupt(
            path / SAE_CONFIG, f"is not a valid SAE config ({type(err).__name__}: {err})"
        ) from None


def load_saes(path: Path, d_in: int | None = None):
    """Every ``seed*`` checkpoint under folder ``path`` (one configuration), stacked by seed."""
    from husai.sae import BatchedSAE

    require_input(path)
    folders = sorted(
        (p for p in path.iterdir() if p.is_dir() and p.name.startswith("seed")),
        key=lambda p: int(p.name[4:]) if p.name[4:].isdigit() else -1,
    )
    if not folders:
        raise HusaiError(f"{path}: no seed* checkpoint folders")
    return BatchedSAE.stack([load_sae(f, d_in) for f in folders])
