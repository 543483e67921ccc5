"""Shared machinery of the SAE zoo: batched parameters, initialisation, inference.

A :class:`BatchedSAE` holds S SAEs of one configuration (one per seed) with a
leading seed dimension, in SAELens's layout and naming::

    W_enc [S, d_in, d_sae]   b_enc [S, d_sae]   W_dec [S, d_sae, d_in]   b_dec [S, d_in]

plus the inference extras of its architecture (``threshold`` [S, d_sae] for
JumpReLU-style inference; ``b_gate``, ``b_mag``, ``r_mag`` [S, d_sae] instead of
``b_enc`` for gated). Encoding is SAELens's inference encoding with
``apply_b_dec_to_input`` (the input is centred by ``b_dec`` before the encoder)::

    standard  relu(pre)                     pre = (x - b_dec) @ W_enc + b_enc
    topk      relu of the k largest of pre, zero elsewhere
    jumprelu  relu(pre) * (pre > threshold)   (also batchtopk and matryoshka_batchtopk,
                                               which SAELens saves as JumpReLU SAEs)
    gated     (x_c @ W_enc + b_gate > 0) * relu(x_c @ (W_enc * exp(r_mag)) + b_mag)

Trained SAEs are returned in a *canonical form*: they act on the raw activations
(any activation scaling used in training is folded into the weights, as SAELens's
``fold_activation_norm_scaling_factor`` does) and, wherever that is an exact
reparametrisation, with unit-norm decoder rows (SAELens's ``fold_W_dec_norm``:
the norms move into the encoder, biases and thresholds). Latent activations are
then the coefficients of unit atoms in activation units. The fold is skipped only
for the topk family trained with ``rescale_acts_by_decoder_norm: false``, where it
would change which latents are selected.

Randomness: each seed draws its initialisation and its data order from its own
generators, derived from the seed and a purpose string (:func:`seed_generator`),
so seed i's SAE does not depend on the other seeds in the batch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

import torch

from husai.errors import HusaiError
from husai.sae import registry
from husai.sae.config import TOPK_FAMILY, SAEConfig

INFERENCE_KIND = registry.inference_kinds()
"""The SAELens inference architecture each training architecture is saved as (from its spec)."""

INFERENCE_PARAMS = {
    "standard": ("W_enc", "b_enc", "W_dec", "b_dec"),
    "topk": ("W_enc", "b_enc", "W_dec", "b_dec"),
    "jumprelu": ("W_enc", "b_enc", "W_dec", "b_dec", "threshold"),
    "gated": ("W_enc", "b_gate", "b_mag", "r_mag", "W_dec", "b_dec"),
}
"""Tensor names of each inference architecture, as in SAELens's state dicts."""


def seed_generator(seed: int, purpose: str) -> torch.Generator:
    """A CPU generator for one use of one seed (``init``, ``data``), independent across uses.

    The stream seed is the first 8 bytes of sha256(f"{purpose}:{seed}"), so streams
    for different purposes or seeds never collide the way ``seed + offset`` would.
    """
    digest = hashlib.sha256(f"{purpose}:{seed}".encode()).digest()
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
    return gen


def init_decoder(config: SAEConfig, seeds: tuple[int, ...] | list[int]) -> torch.Tensor:
    """Initial W_dec [S, d_sae, d_in]: SAELens's init, one generator per seed.

    SAELens draws W_dec with ``kaiming_uniform_`` (uniform in a cube) and then
    rescales every row to ``decoder_init_norm``; the cube's half-width cancels in
    the rescaling, so drawing from U(-1, 1) gives the same distribution. W_enc
    starts as W_dec^T (the same atoms).
    """
    rows = []
    for seed in seeds:
        w = (
            torch.rand(
                config.d_sae,
                config.d_in,
                generator=seed_generator(seed, "init"),
                dtype=torch.float32,
            )
            * 2
            - 1
        )
        rows.append(w * (config.decoder_init_norm / w.norm(dim=-1, keepdim=True)))
    return torch.stack(rows)


@dataclass
class BatchedSAE:
    """S SAEs of one configuration, seed-major; see the module docstring for the layout."""

    config: SAEConfig
    seeds: tuple[int, ...]
    params: dict[str, torch.Tensor]

    def __post_init__(self) -> None:
        self.seeds = tuple(int(s) for s in self.seeds)
        expected = INFERENCE_PARAMS[self.kind]
        if set(self.params) != set(expected):
            raise HusaiError(
                f"{self.config.architecture} SAE needs tensors {list(expected)}, "
                f"got {sorted(self.params)}"
            )
        shapes = self.expected_shapes()
        for name, tensor in self.params.items():
            if tuple(tensor.shape) != shapes[name]:
                raise HusaiError(
                    f"SAE tensor {name} has shape {tuple(tensor.shape)}, "
                    f"expected {shapes[name]} for d_in = {self.config.d_in}, "
                    f"d_sae = {self.config.d_sae}, {len(self.seeds)} seed(s)"
                )

    # ------------------------------------------------------------------ shape and access

    @property
    def kind(self) -> str:
        """The inference architecture (standard, topk, jumprelu or gated)."""
        return INFERENCE_KIND[self.config.architecture]

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        s, d, n = len(self.seeds), self.config.d_in, self.config.d_sae
        shapes = {"W_enc": (s, d, n), "W_dec": (s, n, d), "b_dec": (s, d)}
        return {name: shapes.get(name, (s, n)) for name in INFERENCE_PARAMS[self.kind]}

    @property
    def W_enc(self) -> torch.Tensor:
        return self.params["W_enc"]

    @property
    def W_dec(self) -> torch.Tensor:
        return self.params["W_dec"]

    @property
    def b_dec(self) -> torch.Tensor:
        return self.params["b_dec"]

    def select(self, index: int) -> BatchedSAE:
        """The SAE of seed number ``index`` alone (a batch of one, sharing no storage)."""
        params = {k: v[index : index + 1].clone() for k, v in self.params.items()}
        return BatchedSAE(self.config, (self.seeds[index],), params)

    def clone(self) -> BatchedSAE:
        return BatchedSAE(self.config, self.seeds, {k: v.clone() for k, v in self.params.items()})

    @staticmethod
    def stack(saes: list[BatchedSAE]) -> BatchedSAE:
        """Concatenate batches of the same configuration along the seed dimension."""
        first = saes[0]
        for other in saes[1:]:
            if other.config != first.config:
                raise HusaiError("cannot stack SAEs of different configurations")
        params = {k: torch.cat([s.params[k] for s in saes]) for k in first.params}
        return BatchedSAE(first.config, tuple(s for sae in saes for s in sae.seeds), params)

    # ------------------------------------------------------------------ inference

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, d_in] (shared by the seeds) or [S, N, d_in] as [1 or S, N, d_in]; a
        HusaiError for a width other than d_in."""
        if x.shape[-1] != self.config.d_in:
            raise HusaiError(
                f"activations have width {x.shape[-1]} but the SAE has d_in = {self.config.d_in}"
            )
        if x.ndim == 2:
            return x.unsqueeze(0)
        if x.ndim != 3 or x.shape[0] != self.n_seeds:
            raise HusaiError(
                f"expected activations [N, d_in] or [S={self.n_seeds}, N, d_in], "
                f"got {tuple(x.shape)}"
            )
        return x

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent activations [S, N, d_sae] of x [N, d_in] (shared) or [S, N, d_in]."""
        x = self.check_input(x).to(self.W_enc.dtype)
        p = self.params
        xc = x - p["b_dec"].unsqueeze(1)
        if self.kind == "gated":
            gate = torch.baddbmm(p["b_gate"].unsqueeze(1), xc, p["W_enc"]) > 0
            w_mag = p["W_enc"] * p["r_mag"].exp().unsqueeze(1)
            mag = torch.baddbmm(p["b_mag"].unsqueeze(1), xc, w_mag).relu_()
            return mag * gate
        pre = torch.baddbmm(p["b_enc"].unsqueeze(1), xc, p["W_enc"])
        if self.kind == "standard":
            return pre.relu_()
        if self.kind == "topk":
            vals, idx = torch.topk(pre, self.config.k, dim=-1, sorted=False)
            return torch.zeros_like(pre).scatter_(-1, idx, vals.relu_())
        return pre.relu() * (pre > p["threshold"].unsqueeze(1))  # jumprelu

    @torch.no_grad()
    def decode(self, acts: torch.Tensor) -> torch.Tensor:
        """Reconstructions [S, N, d_in] from latent activations [S, N, d_sae]."""
        return torch.baddbmm(self.b_dec.unsqueeze(1), acts, self.W_dec)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    # ------------------------------------------------------------------ atoms

    def decoder_atoms(self) -> torch.Tensor:
        """Unit-norm decoder rows [S, d_sae, d_in] (the dictionary, SCIENCE.md section 4)."""
        return _unit_rows(self.W_dec)

    def encoder_atoms(self) -> torch.Tensor:
        """Unit-norm encoder columns as rows [S, d_sae, d_in]."""
        return _unit_rows(self.W_enc.transpose(1, 2))


def _unit_rows(w: torch.Tensor) -> torch.Tensor:
    return w / w.norm(dim=-1, keepdim=True).clamp_min(1e-12)


# ----------------------------------------------------------------------------- training side


class Architecture:
    """What one architecture module provides to the training engine.

    Training parameters live in scaled activation units (see ``normalize_activations``)
    and keep the encoder as rows, ``W_enc_rows`` [S, d_sae, d_in] (= W_enc^T), which
    makes the sparse gradient a sum of rows. ``step`` returns the per-seed numbers and
    the gradient of the *sum over seeds* of the per-seed losses (so seeds never
    interact), and may update non-optimised ``buffers``.

    A subclass describes itself through ``spec``, its torch-free
    :class:`~husai.sae.registry.ArchitectureSpec` (name, inference kind, family, sweep
    knob, hyperparameters read, validation); defining it registers it, ``name`` is
    ``spec.name``. A subclass that inherits ``spec`` (a helper, not an architecture)
    is not registered.
    """

    spec: ClassVar[type[registry.ArchitectureSpec]]
    name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "spec" in cls.__dict__:
            cls.name = cls.spec.name
            registry.register_training(cls)

    def init_params(
        self, config: SAEConfig, seeds: tuple[int, ...]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Initial (parameters, buffers): SAELens's init plus this architecture's extras."""
        w_dec = init_decoder(config, seeds)
        s = len(seeds)
        params = {
            "W_enc_rows": w_dec.clone(),
            "b_enc": torch.zeros(s, config.d_sae),
            "W_dec": w_dec,
            "b_dec": torch.zeros(s, config.d_in),
        }
        return params, {}

    def step(
        self,
        params: dict[str, torch.Tensor],
        buffers: dict[str, torch.Tensor],
        xb: torch.Tensor,
        config: SAEConfig,
        step: int,
        dead: torch.Tensor,
    ):
        """(StepResult, gradients by parameter name) of one step on batch xb [S, B, d_in]."""
        raise NotImplementedError

    def to_inference(
        self,
        params: dict[str, torch.Tensor],
        buffers: dict[str, torch.Tensor],
        config: SAEConfig,
        scale: float = 1.0,
        fold: bool = True,
    ) -> dict[str, torch.Tensor]:
        """Canonical inference tensors (module docstring) from training parameters.

        Training saw ``scale * x``; folding divides the output side by ``scale``. With
        ``fold`` the decoder row norms n move into the encoder side (W_enc * n,
        b_enc * n, threshold * n) and W_dec / n has unit rows.
        """
        kind = INFERENCE_KIND[config.architecture]
        w_dec = params["W_dec"].detach()
        topk_family = config.architecture in TOPK_FAMILY
        foldable = fold and (not topk_family or config.rescale_acts_by_decoder_norm)
        n = w_dec.norm(dim=-1) if foldable else torch.ones(w_dec.shape[:2])
        out = {
            "W_enc": (params["W_enc_rows"].detach() * n.unsqueeze(-1)).transpose(1, 2).contiguous(),
            "W_dec": (w_dec / n.unsqueeze(-1)).contiguous(),
            "b_dec": params["b_dec"].detach() / scale,
        }
        if kind == "gated":
            out["b_gate"] = params["b_gate"].detach() * n / scale
            out["b_mag"] = params["b_mag"].detach() * n / scale
            out["r_mag"] = params["r_mag"].detach().clone()
        else:
            out["b_enc"] = params["b_enc"].detach() * n / scale
        if kind == "jumprelu":
            out["threshold"] = self.inference_threshold(params, buffers, config, n) / scale
        return out

    def inference_threshold(
        self,
        params: dict[str, torch.Tensor],
        buffers: dict[str, torch.Tensor],
        config: SAEConfig,
        n: torch.Tensor,
    ) -> torch.Tensor:
        """The JumpReLU threshold [S, d_sae] after the decoder-norm fold, before unscaling."""
        raise NotImplementedError


def init_saes(config: SAEConfig, seeds: tuple[int, ...] | list[int]) -> BatchedSAE:
    """The SAEs exactly as training starts from them (decoder rows of norm
    ``decoder_init_norm``, W_enc = W_dec^T, zero biases), in the inference layout.

    This is the "untrained" stability baseline. Unlike a trained SAE it is not
    folded: thresholds (jumprelu) are in training units, which differ from raw
    units only when ``normalize_activations`` rescales the data.
    """
    from husai.sae import architecture

    config.validate()
    arch = architecture(config.architecture)
    seeds = tuple(int(s) for s in seeds)
    params, buffers = arch.init_params(config, seeds)
    return BatchedSAE(config, seeds, arch.to_inference(params, buffers, config, fold=False))
