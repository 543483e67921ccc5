"""What each SAE architecture is, torch-free: one :class:`ArchitectureSpec` per architecture.

Defining a spec registers it (:mod:`husai.sae.registry` says how to add one); the
order of definition is the order of ``ARCHITECTURES``. ``hyperparams`` lists every
field of :class:`~husai.sae.config.SAEHyperparams` that the architecture's training
step and inference read besides the shared ones (``COMMON_HYPERPARAMS``);
``tests/test_sae_registry.py`` checks that changing any other field leaves a training
run bit-identical and that changing any listed one does not. ``validate`` checks
those fields; errors name the same keys and say the same as they always have.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from husai.sae.registry import L0, L1, TOPK, ArchitectureSpec, Need

if TYPE_CHECKING:
    from husai.sae.config import SAEHyperparams


class Standard(ArchitectureSpec):
    """ReLU SAE with an L1 penalty warmed up over ``l1_warm_up_steps``."""

    name = "standard"
    inference_kind = "standard"
    family = L1
    knob = "l1_coefficient"
    knob_label = "l1c"
    hyperparams = ("l1_coefficient", "l1_warm_up_steps")

    @classmethod
    def validate(cls, hp: SAEHyperparams, need: Need) -> None:
        need(hp.l1_coefficient > 0, "l1_coefficient", "must be > 0")


class TopK(ArchitectureSpec):
    """k largest latents per input, AuxK on latents dead for ``dead_feature_window`` steps."""

    name = "topk"
    inference_kind = "topk"
    family = TOPK
    knob = "k"
    knob_label = "k"
    hyperparams = (
        "k",
        "aux_loss_coefficient",
        "dead_feature_window",
        "rescale_acts_by_decoder_norm",
    )

    @classmethod
    def validate(cls, hp: SAEHyperparams, need: Need) -> None:
        need(hp.k >= 1, "k", "must be >= 1")
        need(hp.k <= hp.d_sae, "k", f"must be <= d_sae = {hp.d_sae}")
        need(hp.aux_loss_coefficient >= 0, "aux_loss_coefficient", "must be >= 0")


class BatchTopK(TopK):
    """k latents per input on average over a batch; saved as JumpReLU with an EMA threshold."""

    name = "batchtopk"
    inference_kind = "jumprelu"
    hyperparams = (*TopK.hyperparams, "topk_threshold_lr")

    @classmethod
    def validate(cls, hp: SAEHyperparams, need: Need) -> None:
        super().validate(hp, need)
        need(0 < hp.topk_threshold_lr <= 1, "topk_threshold_lr", "must lie in (0, 1]")


class JumpReLU(ArchitectureSpec):
    """Learned per-latent thresholds, L0 penalty with straight-through gradients."""

    name = "jumprelu"
    inference_kind = "jumprelu"
    family = L0
    knob = "l0_coefficient"
    knob_label = "l0c"
    hyperparams = (
        "l0_coefficient",
        "l0_warm_up_steps",
        "jumprelu_init_threshold",
        "jumprelu_bandwidth",
    )

    @classmethod
    def validate(cls, hp: SAEHyperparams, need: Need) -> None:
        need(hp.l0_coefficient > 0, "l0_coefficient", "must be > 0")
        need(hp.jumprelu_bandwidth > 0, "jumprelu_bandwidth", "must be > 0")
        need(hp.jumprelu_init_threshold >= 0, "jumprelu_init_threshold", "must be >= 0")


class Gated(Standard):
    """Separate gate and magnitude paths sharing the encoder; L1 on the gate."""

    name = "gated"
    inference_kind = "gated"


class MatryoshkaBatchTopK(BatchTopK):
    """BatchTopK plus the reconstruction loss of every nested prefix of latents."""

    name = "matryoshka_batchtopk"
    hyperparams = (*BatchTopK.hyperparams, "matryoshka_widths")

    @classmethod
    def validate(cls, hp: SAEHyperparams, need: Need) -> None:
        super().validate(hp, need)
        widths = hp.matryoshka_widths
        need(len(widths) >= 1, "matryoshka_widths", "must list at least one width")
        need(all(w >= 1 for w in widths), "matryoshka_widths", "widths must be >= 1")
        need(
            all(a < b for a, b in itertools.pairwise(widths)),
            "matryoshka_widths",
            "must be strictly increasing",
        )
        need(widths[-1] <= hp.d_sae, "matryoshka_widths", f"widths must be <= d_sae = {hp.d_sae}")
