"""The architecture registry: every SAE architecture describes itself once (torch-free).

An architecture has two halves, each registering itself when its class is defined:

- a *spec*, a subclass of :class:`ArchitectureSpec` in :mod:`husai.sae.specs` (torch-free):
  its ``name``, the SAELens ``inference_kind`` it is saved as, its ``family``, the
  ``knob`` a sweep varies with the ``knob_label`` that sweep configuration names use,
  the :class:`~husai.sae.config.SAEHyperparams` fields its training and inference
  read beyond :data:`COMMON_HYPERPARAMS` (``hyperparams``), and the validation of
  those fields (``validate``). Params validation reads only specs, so it never
  imports torch.
- a *training class*, a subclass of :class:`husai.sae.base.Architecture` in the module
  ``husai.sae.<name>``, which points at its spec (``spec = specs.TopK``);
  :func:`training_class` imports that module on first use.

Everything that used to be a hand-kept table is a view of the specs, in their order
of definition: ``ARCHITECTURES``, the ``Architecture`` Literal, ``TOPK_FAMILY`` and
``L1_FAMILY`` (:mod:`husai.sae.config`), ``INFERENCE_KIND`` (:mod:`husai.sae.base`),
``SWEEP_KNOBS`` and the sweep name labels (:mod:`husai.config`).

Adding a seventh architecture ``foo``:

1. in :mod:`husai.sae.specs`, ``class Foo(ArchitectureSpec)`` (or a subclass of the
   spec it extends) setting the class attributes above and, if it has knobs of its
   own, ``validate`` (new knobs also need a field in ``SAEHyperparams``);
2. ``husai/sae/foo.py`` with ``class Foo(Architecture)``: ``spec = specs.Foo`` and
   ``init_params`` / ``step`` (/ ``inference_threshold`` for a JumpReLU-style save);
3. tests: a case in ``saelens_training_sae`` of ``tests/test_sae_saelens.py`` (the same
   SAE built by SAELens). The tests parametrised over ``ARCHITECTURES`` (determinism,
   seed independence, agreement with SAELens, the check that ``hyperparams`` is
   exactly what training reads) then cover it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from husai.sae.config import SAEHyperparams

TOPK = "topk"
"""Family: sparsity set by ``k``, AuxK loss on dead latents, exact sparse training step."""
L1 = "l1"
"""Family: L1 penalty on activations weighted by decoder row norms."""
L0 = "l0"
"""Family: L0 penalty through a learned threshold (JumpReLU)."""
FAMILIES = (TOPK, L1, L0)

INFERENCE_KINDS = ("standard", "topk", "jumprelu", "gated")
"""The SAELens inference architectures an SAE can be saved as."""

COMMON_HYPERPARAMS: tuple[str, ...] = (
    "architecture",
    "d_sae",
    "decoder_init_norm",
    "normalize_activations",
    "lr",
    "lr_warm_up_steps",
    "adam_beta1",
    "adam_beta2",
    "max_grad_norm",
    "batch_size",
    "epochs",
    "convergence_tol",
    "convergence_window",
    "convergence",
)
"""Fields the shared code (initialisation, training loop, optimiser) reads for every
architecture."""

SWEEP_OVERRIDES: tuple[str, ...] = (
    "architecture",
    "d_sae",
    "epochs",
    "lr",
    "batch_size",
    "seeds",
    "convergence",
    "convergence_tol",
    "convergence_window",
)
"""``sae`` fields a sweep cell sets itself (``husai.config.Params.sweep_configs``), on top
of each architecture's knob."""

Need = Callable[[bool, str, str], None]
"""``need(ok, field, reason)``: raise a ParamError naming ``field`` unless ok."""

_SPECS: dict[str, type[ArchitectureSpec]] = {}
_TRAINING: dict[str, type] = {}


class ArchitectureSpec:
    """The torch-free description of one architecture; defining a subclass that sets
    ``name`` registers it (a subclass may extend a registered spec)."""

    name: ClassVar[str]
    inference_kind: ClassVar[str]
    """The SAELens inference architecture it is saved as (one of INFERENCE_KINDS)."""
    family: ClassVar[str]
    """One of FAMILIES."""
    knob: ClassVar[str]
    """The SAEHyperparams field a sweep varies."""
    knob_label: ClassVar[str]
    """The knob's short name in sweep configuration names (``topk-d8-k16``)."""
    hyperparams: ClassVar[tuple[str, ...]]
    """SAEHyperparams fields it reads besides COMMON_HYPERPARAMS, knob included."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            _register(cls)

    @classmethod
    def reads(cls) -> tuple[str, ...]:
        """Every SAEHyperparams field its training and inference read."""
        return COMMON_HYPERPARAMS + cls.hyperparams

    @classmethod
    def validate(cls, hp: SAEHyperparams, need: Need) -> None:
        """Check its own knobs of hp (the shared ones are checked by SAEHyperparams)."""


def _register(spec: type[ArchitectureSpec]) -> None:
    if spec.name in _SPECS:
        raise ValueError(f"architecture {spec.name!r} is already registered")
    if spec.family not in FAMILIES or spec.inference_kind not in INFERENCE_KINDS:
        raise ValueError(f"architecture {spec.name!r}: unknown family or inference kind")
    if spec.knob not in spec.hyperparams:
        raise ValueError(f"architecture {spec.name!r}: its knob must be in its hyperparams")
    _SPECS[spec.name] = spec


def register_training(cls: type) -> None:
    """Record the training class of ``cls.spec`` (called by Architecture subclasses)."""
    name = cls.spec.name
    if name in _TRAINING:
        raise ValueError(f"architecture {name!r} already has a training class")
    _TRAINING[name] = cls


def specs() -> dict[str, type[ArchitectureSpec]]:
    """Name -> spec of every registered architecture, in order of definition."""
    import husai.sae.specs  # noqa: F401  (defines, so registers, the built-in specs)

    return dict(_SPECS)


def spec(name: str) -> type[ArchitectureSpec]:
    """The spec of architecture ``name`` (KeyError if unknown)."""
    found = specs().get(name)
    if found is None:
        raise KeyError(f"unknown architecture {name!r} (known: {', '.join(_SPECS)})")
    return found


def names() -> tuple[str, ...]:
    return tuple(specs())


def family(which: str) -> frozenset[str]:
    """The architectures of one family (TOPK, L1 or L0)."""
    return frozenset(n for n, s in specs().items() if s.family == which)


def inference_kinds() -> dict[str, str]:
    return {n: s.inference_kind for n, s in specs().items()}


def sweep_knobs() -> dict[str, str]:
    return {n: s.knob for n, s in specs().items()}


def sweep_labels() -> dict[str, str]:
    return {n: s.knob_label for n, s in specs().items()}


def training_class(name: str) -> type:
    """The training class of architecture ``name``, importing ``husai.sae.<name>``."""
    spec(name)
    if name not in _TRAINING:
        importlib.import_module(f"husai.sae.{name}")
    if name not in _TRAINING:
        raise KeyError(f"husai.sae.{name} defines no Architecture for spec {name!r}")
    return _TRAINING[name]


def sweep_hyperparams(architectures: Iterable[str]) -> tuple[str, ...]:
    """The ``sae.*`` params keys that a sweep cell of these architectures can read.

    The union of the fields each architecture reads, less its own knob and the fields
    the sweep sets itself (SWEEP_OVERRIDES), in SAEHyperparams order: changing any
    other ``sae`` key cannot change a sweep cell.
    """
    import dataclasses

    from husai.sae.config import SAEHyperparams

    read: set[str] = set()
    for name in architectures:
        s = spec(name)
        read |= set(s.reads()) - {s.knob}
    read -= set(SWEEP_OVERRIDES)
    return tuple(f"sae.{f.name}" for f in dataclasses.fields(SAEHyperparams) if f.name in read)
