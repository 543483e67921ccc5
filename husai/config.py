"""Typed, validated view of ``params.yaml``.

``parse_params`` turns the raw mapping into frozen dataclasses or raises a
:class:`~husai.errors.ParamError` that names the dotted key, the bad value and
what was expected. Unknown keys are rejected too, so a typo in
``dvc exp run -S sae.kk=8`` fails loudly instead of silently changing nothing.

Each section is a dataclass whose annotations give the expected type; its
``check`` method holds the range checks. Types are enforced generically:
``int`` rejects booleans and non-integral floats, ``float`` accepts ints and
numeric strings (PyYAML reads ``1e-3`` as a string).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin, get_type_hints

from husai.errors import MISSING, ParamError
from husai.sae.config import SAEHyperparams
from husai.sae.registry import sweep_knobs, sweep_labels
from husai.task import N_CTX

# ----------------------------------------------------------------------------- helpers


def require(ok: bool, key: str, value: object, reason: str) -> None:
    """Raise ParamError(key, value, reason) unless ok."""
    if not ok:
        raise ParamError(key, value, reason)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        allowed = get_args(tp)
        require(value in allowed, key, value, f"must be one of {', '.join(map(str, allowed))}")
        return value
    if origin in (types.UnionType, typing.Union):
        options = [o for o in get_args(tp) if o is not type(None)]
        if value is None and len(options) < len(get_args(tp)):
            return None
        if len(options) == 1:  # Optional[X]: X's own error, with its own key
            return _coerce(options[0], value, key)
        errors = []
        for option in options:
            try:
                return _coerce(option, value, key)
            except ParamError as err:
                errors.append(err.reason)
        raise ParamError(key, value, " or ".join(errors))
    if origin in (list, tuple):
        (item_tp, *_) = get_args(tp) or (Any,)
        require(isinstance(value, list | tuple), key, value, "must be a list")
        items = [_coerce(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        _, val_tp = get_args(tp)
        require(isinstance(value, Mapping), key, value, "must be a mapping")
        return {str(k): _coerce(val_tp, v, _join(key, k)) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return parse_section(tp, value, key)
    if tp is bool:
        require(isinstance(value, bool), key, value, "must be true or false")
        return value
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        require(
            isinstance(value, int) and not isinstance(value, bool), key, value, "must be an integer"
        )
        return value
    if tp is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ParamError(key, value, "must be a number") from None
        require(
            isinstance(value, int | float) and not isinstance(value, bool),
            key,
            value,
            "must be a number",
        )
        return float(value)
    if tp is str:
        require(isinstance(value, str), key, value, "must be a string")
        return value
    raise TypeError(f"unsupported param type {tp!r} for {key}")  # a bug in this module


def _join(at: str, key: object) -> str:
    return f"{at}.{key}" if at else str(key)


def parse_section(cls: type, raw: Any, at: str) -> Any:
    """Build dataclass ``cls`` from mapping ``raw`` found at dotted key ``at`` ('' = top)."""
    require(
        isinstance(raw, Mapping), at or "params.yaml", raw, "must be a mapping of keys to values"
    )
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        require(
            key in fields,
            _join(at, key),
            raw[key],
            f"unknown key (known keys: {', '.join(fields)})",
        )
    values = {}
    for name, f in fields.items():
        key = _join(at, name)
        if name in raw:
            values[name] = _coerce(hints[name], raw[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ParamError(key, MISSING, "missing from params.yaml")
    obj = cls(**values)
    check = getattr(obj, "check", None)
    if check is not None:
        check(at)
    return obj


# ----------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class RuntimeParams:
    """Where and how computation runs. Results are bit-identical only for the same
    device model and thread count."""

    device: Literal["cpu", "cuda"] = "cpu"
    threads: int = 2

    def check(self, at: str) -> None:
        require(self.threads >= 1, f"{at}.threads", self.threads, "must be >= 1")


@dataclass(frozen=True)
class TaskParams:
    """Modular addition (a + b) mod p over every pair, split into train and test."""

    p: int
    frac_train: float
    seed: int

    def check(self, at: str) -> None:
        require(
            self.p >= 3 and self.p % 2 == 1,
            f"{at}.p",
            self.p,
            "must be an odd integer >= 3 (the Fourier basis needs odd p)",
        )
        require(
            0.0 < self.frac_train < 1.0,
            f"{at}.frac_train",
            self.frac_train,
            "must lie strictly between 0 and 1",
        )
        n_train = round(self.frac_train * self.p**2)
        require(
            0 < n_train < self.p**2,
            f"{at}.frac_train",
            self.frac_train,
            f"leaves an empty train or test set for p = {self.p}",
        )


@dataclass(frozen=True)
class TransformerParams:
    """The 1-layer Nanda et al. (2023) model and its full-batch AdamW training."""

    seed: int
    d_model: int
    n_heads: int
    d_head: int
    d_mlp: int
    lr: float
    weight_decay: float
    beta1: float
    beta2: float
    epochs: int
    log_every: int
    warmup_epochs: int = 10
    train_biases: bool = False

    def check(self, at: str) -> None:
        for name in ("d_model", "n_heads", "d_head", "d_mlp", "epochs", "log_every"):
            value = getattr(self, name)
            require(value >= 1, f"{at}.{name}", value, "must be >= 1")
        require(self.warmup_epochs >= 0, f"{at}.warmup_epochs", self.warmup_epochs, "must be >= 0")
        require(self.lr > 0, f"{at}.lr", self.lr, "must be > 0")
        require(self.weight_decay >= 0, f"{at}.weight_decay", self.weight_decay, "must be >= 0")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            require(0 <= value < 1, f"{at}.{name}", value, "must lie in [0, 1)")


@dataclass(frozen=True)
class FourierParams:
    """Thresholds of the Fourier validation (SCIENCE.md section 2)."""

    key_threshold: float = 0.1
    purity_threshold: float = 0.85

    def check(self, at: str) -> None:
        require(
            0 < self.key_threshold <= 1,
            f"{at}.key_threshold",
            self.key_threshold,
            "must lie in (0, 1]",
        )
        require(
            0 < self.purity_threshold <= 1,
            f"{at}.purity_threshold",
            self.purity_threshold,
            "must lie in (0, 1]",
        )


ACTIVATION_HOOKS = frozenset(
    {
        "hook_embed",
        "hook_pos_embed",
        "blocks.0.hook_resid_pre",
        "blocks.0.hook_resid_mid",
        "blocks.0.hook_resid_post",
        "blocks.0.hook_attn_out",
        "blocks.0.hook_mlp_out",
        "blocks.0.attn.hook_q",
        "blocks.0.attn.hook_k",
        "blocks.0.attn.hook_v",
        "blocks.0.attn.hook_z",
        "blocks.0.mlp.hook_pre",
        "blocks.0.mlp.hook_post",
        "unembed.hook_in",
        "unembed.hook_out",
    }
)
"""Hooks of the 1-layer model with one vector per position (``husai.transformer.hook_names``
finds the same set from TransformerLens; a test keeps them equal). Listed here so that
validating params does not import TransformerLens."""


MODULAR = "modular"
"""The primary domain of the transformer's activations (params ``activations.hooks``)."""


@dataclass(frozen=True)
class ActivationsParams:
    """Which activations the SAEs are trained on: one domain per hook (stage
    ``activations@<domain>``), all at the same token position. ``modular`` (the
    primary domain, at ``hook_resid_post`` by default) is the one the sweep, dynamics,
    geometry, predictors and recovery stages analyse."""

    position: int = -1
    hooks: dict[str, str] = field(default_factory=lambda: {MODULAR: "blocks.0.hook_resid_post"})

    def check(self, at: str) -> None:
        require(
            MODULAR in self.hooks,
            f"{at}.hooks",
            dict(self.hooks),
            f"must name the primary domain {MODULAR!r} (the hook the analysis stages read)",
        )
        for name, hook in self.hooks.items():
            require(
                re.fullmatch(r"[a-z][a-z0-9_]*", str(name)) is not None,
                f"{at}.hooks.{name}",
                hook,
                "a domain name must be lowercase letters, digits and _ (it names files and stages)",
            )
            require(
                hook in ACTIVATION_HOOKS,
                f"{at}.hooks.{name}",
                hook,
                f"unknown hook name (known: {', '.join(sorted(ACTIVATION_HOOKS))})",
            )
        require(
            -N_CTX <= self.position < N_CTX,
            f"{at}.position",
            self.position,
            f"must index one of the {N_CTX} token positions ({-N_CTX}..{N_CTX - 1})",
        )


@dataclass(frozen=True, kw_only=True)
class SAEParams(SAEHyperparams):
    """Shared SAE defaults (section ``sae``): every hyperparameter of
    :class:`husai.sae.SAEHyperparams` plus the seeds each configuration is trained with.
    The defaults must form a valid configuration by themselves."""

    seeds: tuple[int, ...] = (42, 123, 456, 789, 1011)

    def check(self, at: str) -> None:
        self.check_as(lambda name: f"{at}.{name}")

    def check_as(self, key: typing.Callable[[str], str]) -> None:
        self.validate(key)
        _check_seeds(self.seeds, key("seeds"))


SAE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def resolve_sae(
    defaults: SAEParams, name: str, overrides: Mapping[str, Any], at: str | None = None
) -> SAEParams:
    """Configuration ``name`` (found at dotted key ``at``, default ``saes.<name>``): the
    ``sae`` defaults with its overrides, validated.

    Errors name ``<at>.<key>`` for an overridden key and ``sae.<key>`` otherwise.
    """
    at = f"saes.{name}" if at is None else at
    require(
        bool(name) and set(name) <= SAE_NAME_CHARS,
        at,
        name,
        "configuration names may hold only letters, digits, '_' and '-' (they name folders)",
    )
    require(
        isinstance(overrides, Mapping), at, overrides, "must be a mapping of sae keys to values"
    )
    hints = get_type_hints(SAEParams)
    known = [f.name for f in dataclasses.fields(SAEParams)]
    values = {}
    for key, value in overrides.items():
        require(key in hints, f"{at}.{key}", value, f"unknown key (known keys: {', '.join(known)})")
        values[key] = _coerce(hints[key], value, f"{at}.{key}")
    merged = dataclasses.replace(defaults, **values)
    merged.check_as(
        lambda field_name: f"{at}.{field_name}" if field_name in values else f"sae.{field_name}"
    )
    return merged


@dataclass(frozen=True)
class AnalysisParams:
    """How stability and recovery are measured (stages ``stability``, ``recovery``, ``sweep``)."""

    ranks: tuple[int, ...] = (4, 8, 16, 32, 64)
    shared_threshold: float = 0.7
    n_boot: int = 1000
    boot_seed: int = 0
    subspace_variance: float = 0.99

    def check(self, at: str) -> None:
        require(
            0 < self.subspace_variance <= 1,
            f"{at}.subspace_variance",
            self.subspace_variance,
            "must lie in (0, 1]",
        )
        require(
            len(self.ranks) >= 1 and all(r >= 1 for r in self.ranks),
            f"{at}.ranks",
            list(self.ranks),
            "must list at least one rank, each >= 1",
        )
        require(
            len(set(self.ranks)) == len(self.ranks),
            f"{at}.ranks",
            list(self.ranks),
            "must not repeat a rank",
        )
        require(
            0 < self.shared_threshold <= 1,
            f"{at}.shared_threshold",
            self.shared_threshold,
            "must lie in (0, 1]",
        )
        require(self.n_boot >= 10, f"{at}.n_boot", self.n_boot, "must be >= 10")
        require(self.boot_seed >= 0, f"{at}.boot_seed", self.boot_seed, "must be >= 0")


# ----------------------------------------------------------------------------- control domains


@dataclass(frozen=True)
class SyntheticParams:
    """The ``synthetic`` control (params ``domains.synthetic``): sparse non-negative
    combinations of planted unit feature directions, drawn with SAELens's
    ``sae_lens.synthetic`` generator (husai.domains.synthetic_domain)."""

    seed: int = 0  # feature directions and samples
    n: int = 16384  # samples (rows)
    d_in: int = 128
    n_features: int = 256
    l0: float = 5.0  # expected number of active features per sample
    firing: Literal["constant", "zipfian"] = "constant"
    zipf_exponent: float = 1.0
    magnitude_mean: float = 1.0  # firing magnitude relu(mean + std * N(0, 1)) (SAELens)
    magnitude_std: float = 0.25
    correlated_fraction: float = 0.0  # share of feature pairs whose firing is correlated
    correlation_strength: float = 0.3  # largest |correlation| of such a pair
    orthogonalize: bool = True  # SAELens's orthogonal_initializer for the directions

    def check(self, at: str) -> None:
        require(self.seed >= 0, f"{at}.seed", self.seed, "must be >= 0")
        require(self.n >= 2, f"{at}.n", self.n, "must be >= 2")
        require(self.d_in >= 2, f"{at}.d_in", self.d_in, "must be >= 2")
        require(self.n_features >= 1, f"{at}.n_features", self.n_features, "must be >= 1")
        require(
            0 < self.l0 <= self.n_features,
            f"{at}.l0",
            self.l0,
            f"must lie in (0, n_features = {self.n_features}]",
        )
        require(self.zipf_exponent > 0, f"{at}.zipf_exponent", self.zipf_exponent, "must be > 0")
        require(self.magnitude_mean > 0, f"{at}.magnitude_mean", self.magnitude_mean, "must be > 0")
        require(self.magnitude_std >= 0, f"{at}.magnitude_std", self.magnitude_std, "must be >= 0")
        require(
            0 <= self.correlated_fraction <= 1,
            f"{at}.correlated_fraction",
            self.correlated_fraction,
            "must lie in [0, 1]",
        )
        require(
            0 < self.correlation_strength < 1,
            f"{at}.correlation_strength",
            self.correlation_strength,
            "must lie in (0, 1)",
        )


@dataclass(frozen=True)
class CirclesParams:
    """The ``circles`` control (params ``domains.circles``): one point on each of several
    round circles in orthogonal 2-D planes per row, the structure of the modular model's
    ``hook_resid_post`` (husai.domains.circles_domain)."""

    seed: int = 0  # the planes and the noise
    n: int = 12769  # rows; row i sits at point c = i mod points
    d_in: int = 128
    points: int = 113  # points per circle: c in Z_points
    frequencies: tuple[int, ...] = (14, 35, 41)  # circle j: angle 2 pi f_j c / points
    radii: tuple[float, ...] = (1.0, 1.0, 1.0)  # one per circle
    noise: float = 0.0  # std of isotropic Gaussian noise added to every row

    def check(self, at: str) -> None:
        require(self.seed >= 0, f"{at}.seed", self.seed, "must be >= 0")
        require(self.n >= 2, f"{at}.n", self.n, "must be >= 2")
        require(self.points >= 3, f"{at}.points", self.points, "must be >= 3")
        require(
            len(self.radii) >= 1 and all(r > 0 for r in self.radii),
            f"{at}.radii",
            list(self.radii),
            "must list at least one radius, each > 0",
        )
        require(
            len(self.frequencies) == len(self.radii),
            f"{at}.frequencies",
            list(self.frequencies),
            f"must list one frequency per circle ({len(self.radii)} radii)",
        )
        require(
            all(0 < f < self.points for f in self.frequencies),
            f"{at}.frequencies",
            list(self.frequencies),
            f"each must lie in 1..{self.points - 1}",
        )
        require(
            2 * len(self.radii) <= self.d_in,
            f"{at}.d_in",
            self.d_in,
            f"must hold the {len(self.radii)} planes (>= {2 * len(self.radii)})",
        )
        require(self.noise >= 0, f"{at}.noise", self.noise, "must be >= 0")


@dataclass(frozen=True)
class DomainsParams:
    """The control domains (stage ``domain``): data with a ground truth known by
    construction. ``modular`` (the transformer's activations) is configured by the
    sections ``task``, ``transformer`` and ``activations``."""

    synthetic: SyntheticParams | None = None
    circles: CirclesParams | None = None

    def names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]


SWEEP_KNOBS = sweep_knobs()
"""The sparsity hyperparameter that a sweep varies for each architecture (its spec's knob)."""


CONVERGENCE_CRITERIA = ("loss", "explained_variance")


def sweep_config_name(architecture: str, d_sae: int, value: float, lr: float | None = None) -> str:
    """A sweep configuration's name: ``<architecture>-d<d_sae>-<knob label><level>``, and
    ``-lr<lr>`` for a learning rate other than the first of ``sweep.lr`` (``lr`` None)."""
    name = f"{architecture}-d{d_sae}-{sweep_labels()[architecture]}{value:g}"
    return name if lr is None else f"{name}-lr{lr:g}"


@dataclass(frozen=True)
class SweepParams:
    """The research grid (stage ``sweep``): architectures x dictionary sizes x sparsity
    levels x learning rates, each trained at every seed from the ``sae`` defaults with
    these overrides, to the convergence criterion (``epochs`` is then the maximum), and
    measured at its stop and after each of ``lengths`` epochs (the training-length axis)."""

    architectures: tuple[str, ...] = ("topk", "batchtopk", "standard", "jumprelu")
    d_sae: tuple[int, ...] = (16, 64, 256, 1024)
    sparsity: dict[str, tuple[float, ...]] = field(default_factory=dict)
    epochs: int = 200
    lr: tuple[float, ...] = (1e-3,)
    lengths: tuple[int, ...] = ()
    convergence: str = "explained_variance"
    convergence_tol: float = 1e-4
    convergence_window: int = 10
    batch_size: int = 256
    seeds: tuple[int, ...] = (42, 123, 456, 789, 1011)
    hungarian_max_d_sae: int = 1024
    stable_ratio: float = 1.0
    min_explained_variance: float = 0.5

    def check(self, at: str) -> None:
        _check_architectures(self.architectures, f"{at}.architectures")
        require(
            self.min_explained_variance < 1.0,
            f"{at}.min_explained_variance",
            self.min_explained_variance,
            "must be < 1 (a configuration reconstructs when its explained variance is >= it)",
        )
        for arch in self.architectures:
            require(
                arch in self.sparsity,
                f"{at}.sparsity",
                dict(self.sparsity),
                f"must list sparsity levels for architecture {arch}",
            )
        require(
            len(self.d_sae) >= 1 and all(d >= 1 for d in self.d_sae),
            f"{at}.d_sae",
            list(self.d_sae),
            "must list at least one size, each >= 1",
        )
        require(
            len(set(self.d_sae)) == len(self.d_sae),
            f"{at}.d_sae",
            list(self.d_sae),
            "must not repeat a size",
        )
        for arch, levels in self.sparsity.items():
            key = f"{at}.sparsity.{arch}"
            require(
                arch in SWEEP_KNOBS,
                key,
                list(levels),
                f"unknown architecture (known: {', '.join(SWEEP_KNOBS)})",
            )
            require(len(levels) >= 1, key, list(levels), "must list at least one level")
            require(len(set(levels)) == len(levels), key, list(levels), "must not repeat a level")
            if SWEEP_KNOBS[arch] == "k":
                require(
                    all(float(v).is_integer() and v >= 1 for v in levels),
                    key,
                    list(levels),
                    "k levels must be integers >= 1",
                )
            else:
                require(
                    all(v > 0 for v in levels),
                    key,
                    list(levels),
                    f"{SWEEP_KNOBS[arch]} levels must be > 0",
                )
        for name in ("epochs", "batch_size", "hungarian_max_d_sae", "convergence_window"):
            require(getattr(self, name) >= 1, f"{at}.{name}", getattr(self, name), "must be >= 1")
        require(
            len(self.lr) >= 1 and all(v > 0 for v in self.lr) and len(set(self.lr)) == len(self.lr),
            f"{at}.lr",
            list(self.lr),
            "must list at least one learning rate, each > 0, none repeated",
        )
        require(
            list(self.lengths) == sorted(set(self.lengths))
            and all(1 <= e < self.epochs for e in self.lengths),
            f"{at}.lengths",
            list(self.lengths),
            f"must be increasing epoch counts in 1..{self.epochs - 1} (below sweep.epochs)",
        )
        require(
            self.convergence in CONVERGENCE_CRITERIA,
            f"{at}.convergence",
            self.convergence,
            f"must be one of {', '.join(CONVERGENCE_CRITERIA)}",
        )
        require(
            self.convergence_tol >= 0,
            f"{at}.convergence_tol",
            self.convergence_tol,
            "must be >= 0 (0: a fixed schedule of sweep.epochs)",
        )
        require(
            len(self.seeds) >= 2,
            f"{at}.seeds",
            list(self.seeds),
            "must list at least two seeds (stability compares seeds)",
        )
        require(
            len(set(self.seeds)) == len(self.seeds) and all(s >= 0 for s in self.seeds),
            f"{at}.seeds",
            list(self.seeds),
            "seeds must be distinct and >= 0",
        )
        require(self.stable_ratio > 0, f"{at}.stable_ratio", self.stable_ratio, "must be > 0")


@dataclass(frozen=True)
class IdentifiabilityParams:
    """The identifiability map (stages ``identifiability@<arch>-s<superposition>`` and
    ``identifiability_summary``): planted-feature data (SAELens's generator, as the
    ``synthetic`` domain) at each superposition level, SAEs at each width and sparsity,
    every cell trained to the convergence criterion, 5 seeds."""

    d_in: int = 32
    n: int = 8192  # samples per superposition level
    l0: float = 4.0  # true L0: expected active features per sample
    seed: int = 0  # data seed (features and samples)
    superposition: tuple[int, ...] = (1, 2, 8)  # n_features / d_in
    width: tuple[float, ...] = (0.5, 1.0, 2.0)  # d_sae / n_features
    sparsity: tuple[float, ...] = (0.5, 1.0, 2.0)  # topk family: k / true L0
    penalty: dict[str, tuple[float, ...]] = field(default_factory=dict)  # per sparsity level
    architectures: tuple[str, ...] = ("topk",)
    seeds: tuple[int, ...] = (42, 123, 456, 789, 1011)
    lr: float = 0.002
    batch_size: int = 256
    max_epochs: int = 600
    convergence_tol: float = 0.001
    convergence_window: int = 20
    recovered_level: float = 0.9  # recovery "reliably high": ground-truth MCC >= this

    def check(self, at: str) -> None:
        for name in ("d_in", "n", "batch_size", "max_epochs", "convergence_window"):
            require(getattr(self, name) >= 1, f"{at}.{name}", getattr(self, name), "must be >= 1")
        require(self.l0 > 0, f"{at}.l0", self.l0, "must be > 0")
        require(self.lr > 0, f"{at}.lr", self.lr, "must be > 0")
        require(
            self.convergence_tol > 0,
            f"{at}.convergence_tol",
            self.convergence_tol,
            "must be > 0 (every cell is trained to convergence)",
        )
        require(
            0 < self.recovered_level <= 1,
            f"{at}.recovered_level",
            self.recovered_level,
            "must lie in (0, 1]",
        )
        for name in ("superposition", "width", "sparsity"):
            levels = getattr(self, name)
            require(
                len(levels) >= 1 and all(v > 0 for v in levels) and len(set(levels)) == len(levels),
                f"{at}.{name}",
                list(levels),
                "must list distinct levels, each > 0",
            )
        _check_seeds(self.seeds, f"{at}.seeds")
        _check_architectures(self.architectures, f"{at}.architectures")
        for arch in self.architectures:
            if SWEEP_KNOBS[arch] != "k":
                levels = self.penalty.get(arch)
                require(
                    levels is not None and len(levels) == len(self.sparsity),
                    f"{at}.penalty.{arch}",
                    None if levels is None else list(levels),
                    f"must list one {SWEEP_KNOBS[arch]} per sparsity level "
                    f"({len(self.sparsity)}, sparse to dense)",
                )

    def cells(self, architecture: str, superposition: int) -> dict[str, tuple[dict, SAEParams]]:
        """The cells of one (architecture, superposition) stage: name -> (coordinates,
        resolved SAE params) for every width x sparsity level."""
        require(
            architecture in self.architectures,
            "identifiability.architectures",
            list(self.architectures),
            f"does not list {architecture!r}",
        )
        require(
            superposition in self.superposition,
            "identifiability.superposition",
            list(self.superposition),
            f"does not list {superposition}",
        )
        knob = SWEEP_KNOBS[architecture]
        n_features = superposition * self.d_in
        out = {}
        for width in self.width:
            d_sae = max(1, round(width * n_features))
            for i, sparsity in enumerate(self.sparsity):
                if knob == "k":
                    level: float = max(1, round(sparsity * self.l0))
                else:
                    level = float(self.penalty[architecture][i])
                name = f"w{width:g}-s{sparsity:g}"
                hp = SAEParams(
                    architecture=architecture,
                    d_sae=d_sae,
                    lr=self.lr,
                    batch_size=self.batch_size,
                    epochs=self.max_epochs,
                    convergence_tol=self.convergence_tol,
                    convergence_window=self.convergence_window,
                    dead_feature_window=self.n // self.batch_size,
                    normalize_activations="expected_average_only_in",
                    seeds=tuple(self.seeds),
                    **{knob: int(level) if knob == "k" else level},
                )
                hp.check_as(
                    lambda f, n=name: f"identifiability[{architecture}-s{superposition}-{n}].{f}"
                )
                coords = {
                    "architecture": architecture,
                    "superposition": superposition,
                    "width": width,
                    "sparsity": sparsity,
                    "n_features": n_features,
                    "d_sae": d_sae,
                    "knob": knob,
                    "level": level,
                }
                out[name] = (coords, hp)
        return out


@dataclass(frozen=True)
class DynamicsParams:
    """Stage ``dynamics``: retrain some configurations of ``saes`` with log-spaced
    checkpoints and follow their stability between seeds during training."""

    configs: tuple[str, ...] = ("topk", "standard")  # names in section saes
    seeds: tuple[int, ...] | None = None  # None: each configuration's own seeds
    checkpoint_base: int = 2  # checkpoints 0, 1, b, b^2, ... and the last step
    threshold: float = 0.7  # Paulo & Belrose shared-latent cosine threshold

    def check(self, at: str) -> None:
        _check_config_names(self.configs, f"{at}.configs", allow_empty=False)
        if self.seeds is not None:
            _check_seeds(self.seeds, f"{at}.seeds")
        require(
            self.checkpoint_base >= 2,
            f"{at}.checkpoint_base",
            self.checkpoint_base,
            "must be an integer >= 2",
        )
        require(0 < self.threshold <= 1, f"{at}.threshold", self.threshold, "must lie in (0, 1]")


@dataclass(frozen=True)
class GeometryParams:
    """Stage ``geometry``: spectra, subspaces and atom groups of the baseline SAEs."""

    configs: tuple[str, ...] | None = None  # None: every configuration of saes
    live_only: bool = True  # analyse the atoms of live latents only (fire on some input)
    ranks: tuple[int, ...] = (4, 8, 16, 32, 64)  # subspace ranks reported in the JSON
    group_min_share: float = 0.5  # atom joins key frequency k's group at this share of its norm^2
    null_rounds: int = 20  # label shuffles per dictionary for the group-overlap null
    seed: int = 0  # seed of the shuffles and of the isotropic dictionaries

    def check(self, at: str) -> None:
        if self.configs is not None:
            _check_config_names(self.configs, f"{at}.configs", allow_empty=False)
        require(
            len(self.ranks) >= 1 and all(r >= 1 for r in self.ranks),
            f"{at}.ranks",
            list(self.ranks),
            "must list ranks >= 1",
        )
        require(
            0 < self.group_min_share <= 1,
            f"{at}.group_min_share",
            self.group_min_share,
            "must lie in (0, 1]",
        )
        require(self.null_rounds >= 0, f"{at}.null_rounds", self.null_rounds, "must be >= 0")
        require(self.seed >= 0, f"{at}.seed", self.seed, "must be >= 0")


@dataclass(frozen=True)
class PredictorsParams:
    """Stage ``predictors``: which latent properties predict sharing across seeds."""

    configs: tuple[str, ...] | None = None  # None: every configuration of saes
    threshold: float = 0.7  # Paulo & Belrose shared-latent cosine threshold
    shared_with: Literal["majority", "any", "all"] = "majority"  # of the other seeds

    def check(self, at: str) -> None:
        if self.configs is not None:
            _check_config_names(self.configs, f"{at}.configs", allow_empty=False)
        require(0 < self.threshold <= 1, f"{at}.threshold", self.threshold, "must lie in (0, 1]")


def _check_config_names(names: tuple[str, ...], key: str, allow_empty: bool) -> None:
    require(
        allow_empty or len(names) >= 1, key, list(names), "must name at least one configuration"
    )
    require(len(set(names)) == len(names), key, list(names), "must not repeat a configuration")


def _check_architectures(architectures: tuple[str, ...], key: str) -> None:
    """At least one architecture, each known (it has a sweep knob), none repeated."""
    require(
        len(architectures) >= 1, key, list(architectures), "must list at least one architecture"
    )
    for i, arch in enumerate(architectures):
        require(
            arch in SWEEP_KNOBS,
            f"{key}[{i}]",
            arch,
            f"unknown architecture (known: {', '.join(SWEEP_KNOBS)})",
        )
    require(
        len(set(architectures)) == len(architectures),
        key,
        list(architectures),
        "must not repeat an architecture",
    )


def _check_seeds(seeds: tuple[int, ...], key: str) -> None:
    require(
        len(seeds) >= 2, key, list(seeds), "must list at least 2 seeds (stability compares seeds)"
    )
    require(len(set(seeds)) == len(seeds), key, list(seeds), "must not repeat a seed")
    require(all(s >= 0 for s in seeds), key, list(seeds), "seeds must be >= 0")


@dataclass(frozen=True)
class Params:
    """Everything in params.yaml."""

    runtime: RuntimeParams = field(default_factory=RuntimeParams)
    task: TaskParams | None = None
    transformer: TransformerParams | None = None
    fourier: FourierParams = field(default_factory=FourierParams)
    activations: ActivationsParams = field(default_factory=ActivationsParams)
    sae: SAEParams = field(default_factory=SAEParams)
    saes: dict[str, dict[str, Any]] = field(default_factory=dict)  # domain -> name -> overrides
    domains: DomainsParams = field(default_factory=DomainsParams)
    identifiability: IdentifiabilityParams | None = None
    analysis: AnalysisParams = field(default_factory=AnalysisParams)
    sweep: SweepParams | None = None
    dynamics: DynamicsParams = field(default_factory=DynamicsParams)
    geometry: GeometryParams = field(default_factory=GeometryParams)
    predictors: PredictorsParams = field(default_factory=PredictorsParams)

    def check(self, at: str) -> None:
        require(self.task is not None, "task", MISSING, "missing from params.yaml")
        require(self.transformer is not None, "transformer", MISSING, "missing from params.yaml")
        known = [*self.activations.hooks, *self.domains.names()]
        for name in self.activations.hooks:
            require(
                name not in self.domains.names(),
                f"activations.hooks.{name}",
                self.activations.hooks[name],
                "is also a control domain of section domains: domain names must differ",
            )
        for domain, configs in self.saes.items():
            require(
                domain in known,
                f"saes.{domain}",
                configs,
                f"is not a domain (known: {', '.join(known)}; a control needs its "
                "section in domains)",
            )
            require(
                isinstance(configs, Mapping),
                f"saes.{domain}",
                configs,
                "must be a mapping of configuration names to sae overrides",
            )
            self.sae_configs(domain)

    def sweep_configs(
        self, architecture: str, d_sae: int
    ) -> dict[str, tuple[str, float, SAEParams | str]]:
        """The sweep configurations of one (architecture, d_sae) cell of the grid:
        name -> (knob, level, resolved params), or (knob, level, reason) for a
        combination that is invalid (e.g. k > d_sae) and is skipped."""
        sw = self.sweep
        require(sw is not None, "sweep", MISSING, "missing from params.yaml")
        assert sw is not None
        require(
            architecture in sw.architectures,
            "sweep.architectures",
            list(sw.architectures),
            f"does not list architecture {architecture!r}",
        )
        require(d_sae in sw.d_sae, "sweep.d_sae", list(sw.d_sae), f"does not list {d_sae}")
        knob = SWEEP_KNOBS[architecture]
        out: dict[str, tuple[str, float, SAEParams | str]] = {}
        for i, lr in enumerate(sw.lr):
            for level in sw.sparsity[architecture]:
                value: int | float = int(level) if knob == "k" else float(level)
                name = sweep_config_name(architecture, d_sae, value, lr if i else None)
                out[name] = self._sweep_config(name, architecture, d_sae, knob, value, lr)
        return out

    def _sweep_config(
        self, name: str, architecture: str, d_sae: int, knob: str, value: float, lr: float
    ) -> tuple[str, float, SAEParams | str]:
        sw = self.sweep
        assert sw is not None
        try:
            hp = dataclasses.replace(
                self.sae,
                architecture=architecture,
                d_sae=d_sae,
                epochs=sw.epochs,
                lr=lr,
                batch_size=sw.batch_size,
                seeds=tuple(sw.seeds),
                convergence=sw.convergence,
                convergence_tol=sw.convergence_tol,
                convergence_window=sw.convergence_window,
                **{knob: value},
            )
            hp.check_as(lambda f, n=name: f"sweep[{n}].{f}")
        except ParamError as err:
            return (knob, value, f"{knob} = {value:g} with d_sae = {d_sae}: {err.reason}")
        return (knob, value, hp)

    def analysis_configs(self, section: str) -> dict[str, SAEParams]:
        """The configurations of ``saes`` that analysis section ``section`` (dynamics,
        geometry or predictors) names, or all of them when it names none (each has at
        least 2 seeds: SAEParams checks that). A ParamError names the bad key."""
        configs = self.sae_configs()
        names = getattr(self, section).configs
        key = f"{section}.configs"
        if names is None:
            require(bool(configs), "saes", {}, f"lists no configuration for {section}")
            names = tuple(configs)
        for i, name in enumerate(names):
            require(
                name in configs,
                f"{key}[{i}]",
                name,
                f"is not a configuration of saes (known: {', '.join(configs) or 'none'})",
            )
        return {name: configs[name] for name in names}

    def sae_domains(self) -> list[str]:
        """The domains that train SAEs: the keys of section ``saes``."""
        return list(self.saes)

    def is_transformer_domain(self, domain: str) -> bool:
        """Whether ``domain`` is the transformer's activations at a hook (a key of
        ``activations.hooks``) rather than a control domain."""
        return domain in self.activations.hooks

    def sae_configs(self, domain: str = MODULAR) -> dict[str, SAEParams]:
        """The configurations ``saes.<domain>`` (name -> resolved, validated params);
        none for a domain that ``saes`` does not list."""
        return {
            name: resolve_sae(self.sae, name, raw, at=f"saes.{domain}.{name}")
            for name, raw in (self.saes.get(domain) or {}).items()
        }

    def domain_spec(self, domain: str) -> SyntheticParams | CirclesParams:
        """The params of control domain ``domain`` (section ``domains.<domain>``)."""
        spec = getattr(self.domains, domain, None) if domain not in self.activations.hooks else None
        require(
            spec is not None,
            f"domains.{domain}",
            MISSING,
            f"is not a control domain of params.yaml (known: {', '.join(self.domains.names())})",
        )
        return spec


def parse_params(raw: Any) -> Params:
    """Validate the whole params mapping; raise ParamError naming the first bad key."""
    if raw is None:
        raw = {}
    return parse_section(Params, raw, "")
