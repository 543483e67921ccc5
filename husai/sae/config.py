"""Hyperparameters of one SAE configuration, validated (torch-free).

Names follow SAELens 6.54 wherever SAELens has the knob (``k``, ``l1_coefficient``,
``l0_coefficient``, ``jumprelu_bandwidth``, ``aux_loss_coefficient``,
``dead_feature_window``, ``rescale_acts_by_decoder_norm``, ``topk_threshold_lr``,
``matryoshka_widths``, ``decoder_init_norm``, ``normalize_activations``,
``lr_warm_up_steps``, ``adam_beta1``/``adam_beta2``), so a reader of the SAELens
docs knows what each one does. Knobs SAELens has no name for are ``batch_size``
(SAELens: ``train_batch_size_samples``), ``epochs`` (passes over the whole
activation dataset, at most, when training to convergence), ``convergence_tol`` and
``convergence_window`` (the stopping criterion, :func:`husai.sae.train.train_saes`) and
``max_grad_norm`` (SAELens clips at 1.0 without a knob).

:class:`SAEHyperparams` is what params.yaml sets; :class:`SAEConfig` adds ``d_in``,
which comes from the activations. ``validate`` raises :class:`~husai.errors.ParamError`
naming the dotted params key, so ``saes.topk.k = 2000`` says which line to fix.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from husai.errors import ParamError
from husai.sae import registry, specs  # noqa: F401  (specs: defining them registers them)

ARCHITECTURES: tuple[str, ...] = registry.names()
"""Every registered architecture (:mod:`husai.sae.registry`), in order of definition."""
Architecture = Literal[ARCHITECTURES]  # type: ignore[valid-type]  # the registered names
TOPK_FAMILY = registry.family(registry.TOPK)
"""Architectures whose sparsity is set by ``k`` and that train with the AuxK loss."""
L1_FAMILY = registry.family(registry.L1)
"""Architectures with an L1 penalty weighted by decoder row norms."""


def _require(ok: bool, key: str, value: object, reason: str) -> None:
    if not ok:
        raise ParamError(key, value, reason)


@dataclass(frozen=True, kw_only=True)
class SAEHyperparams:
    """Everything that defines how a batch of SAEs is built and trained, except d_in.

    Each knob is used only by the architectures named in its comment (whose specs,
    :mod:`husai.sae.specs`, declare it and validate it); the others ignore it (so one
    shared ``sae`` section can hold defaults for all of them).
    """

    architecture: Architecture = "topk"
    d_sae: int = 1024
    # topk, batchtopk, matryoshka_batchtopk: active latents per input (batchtopk: on average)
    k: int = 32
    # topk family: AuxK (Gao et al. 2024) weight, and the dead-latent window in steps
    aux_loss_coefficient: float = 1.0
    dead_feature_window: int = 1000
    # topk family: select and decode with decoder-norm-rescaled activations (SAELens default)
    rescale_acts_by_decoder_norm: bool = True
    # batchtopk family: EMA rate of the inference threshold (Bussmann et al. 2024)
    topk_threshold_lr: float = 0.01
    # matryoshka_batchtopk: nested prefix widths; d_sae is appended when missing
    matryoshka_widths: tuple[int, ...] = ()
    # standard, gated: L1 penalty on activations x decoder row norms, linearly warmed up
    l1_coefficient: float = 1.0
    l1_warm_up_steps: int = 0
    # jumprelu: L0 penalty (DeepMind "step" loss), threshold init, STE bandwidth
    l0_coefficient: float = 1.0
    l0_warm_up_steps: int = 0
    jumprelu_init_threshold: float = 0.01
    jumprelu_bandwidth: float = 0.05
    # all: initial decoder row norm (W_enc starts as W_dec^T), activation scaling
    decoder_init_norm: float = 0.1
    normalize_activations: Literal["none", "expected_average_only_in"] = "none"
    # optimisation: Adam, constant lr after a linear warm-up, per-SAE grad-norm clipping
    lr: float = 3e-4
    lr_warm_up_steps: int = 0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    max_grad_norm: float = 1.0
    batch_size: int = 256
    # all: maximum passes over the data; with convergence_tol > 0 a seed stops earlier, at
    # the end of the first epoch that meets the criterion `convergence` over the last
    # convergence_window epochs (husai.sae.train): "loss", its mean training loss improved
    # by less than convergence_tol (relative); "explained_variance", its explained
    # variance rose by less than convergence_tol. convergence_tol = 0 trains exactly
    # `epochs` epochs
    epochs: int = 20
    convergence_tol: float = 0.0
    convergence_window: int = 5
    convergence: Literal["loss", "explained_variance"] = "loss"

    def validate(self, key: Callable[[str], str] | None = None) -> None:
        """Raise ParamError naming ``key(field)`` (default ``sae.<field>``) for a bad value."""
        k_of = key or (lambda name: f"sae.{name}")

        def need(ok: bool, name: str, reason: str) -> None:
            _require(ok, k_of(name), getattr(self, name), reason)

        need(
            self.architecture in ARCHITECTURES,
            "architecture",
            f"unknown architecture (known: {', '.join(ARCHITECTURES)})",
        )
        need(self.d_sae >= 1, "d_sae", "must be >= 1")
        for name in ("batch_size", "epochs", "dead_feature_window", "convergence_window"):
            need(getattr(self, name) >= 1, name, "must be >= 1")
        for name in ("lr_warm_up_steps", "l1_warm_up_steps", "l0_warm_up_steps"):
            need(getattr(self, name) >= 0, name, "must be >= 0")
        need(self.lr > 0, "lr", "must be > 0")
        for name in ("adam_beta1", "adam_beta2"):
            need(0 <= getattr(self, name) < 1, name, "must lie in [0, 1)")
        need(self.max_grad_norm >= 0, "max_grad_norm", "must be >= 0 (0 turns clipping off)")
        need(
            math.isfinite(self.convergence_tol) and self.convergence_tol >= 0,
            "convergence_tol",
            "must be >= 0 (0 trains exactly `epochs` epochs)",
        )
        need(
            self.convergence in ("loss", "explained_variance"),
            "convergence",
            "must be loss or explained_variance",
        )
        need(self.decoder_init_norm > 0, "decoder_init_norm", "must be > 0")
        spec = registry.specs().get(self.architecture)
        if spec is not None:
            spec.validate(self, need)

    @property
    def levels(self) -> tuple[int, ...]:
        """Matryoshka prefix widths ending in d_sae (SAELens appends d_sae when absent)."""
        widths = tuple(self.matryoshka_widths)
        return widths if widths and widths[-1] == self.d_sae else (*widths, self.d_sae)


@dataclass(frozen=True, kw_only=True)
class SAEConfig(SAEHyperparams):
    """One SAE configuration: the hyperparameters plus the input width ``d_in``."""

    d_in: int

    def validate(self, key: Callable[[str], str] | None = None) -> None:
        super().validate(key)
        _require(self.d_in >= 1, (key or (lambda n: f"sae.{n}"))("d_in"), self.d_in, "must be >= 1")

    @classmethod
    def from_hyperparams(cls, hp: SAEHyperparams, d_in: int) -> SAEConfig:
        names = [f.name for f in dataclasses.fields(SAEHyperparams)]
        return cls(d_in=d_in, **{name: getattr(hp, name) for name in names})

    def hyperparams(self) -> dict[str, object]:
        """The fields as plain JSON-ready values (tuples as lists), in declaration order."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out
