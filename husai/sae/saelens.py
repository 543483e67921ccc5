"""Conversion to and from SAELens's on-disk format, as (cfg dict, state dict) pairs.

SAELens (6.x) saves an SAE as a folder with ``cfg.json`` (the inference config) and
``sae_weights.safetensors`` (its state dict); ``sae_lens.SAE.load_from_disk`` reads it.
This module builds both objects for one seed of a :class:`BatchedSAE` and reads them
back; writing files is the stages' job. It does not import SAELens.

What is written is the canonical inference SAE (raw activation units, activation
scaling folded in, so ``normalize_activations: none``; unit decoder rows where the
fold is exact), as SAELens's own ``save_inference_model`` would write it: TopK as a
``topk`` SAE (``rescale_acts_by_decoder_norm: false``, the norms being folded),
BatchTopK and Matryoshka BatchTopK as ``jumprelu`` SAEs with their estimated threshold.
The training configuration and seed go under ``metadata.husai``, which SAELens keeps
and ignores; :func:`from_saelens` restores them from there.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from husai.errors import HusaiError
from husai.sae.base import INFERENCE_PARAMS, BatchedSAE
from husai.sae.config import ARCHITECTURES, SAEConfig, SAEHyperparams

SAELENS_FORMAT_VERSION = "6.54.12"
"""The SAELens version whose format is written (``metadata.sae_lens_version``)."""


def to_saelens(
    sae: BatchedSAE, index: int, metadata: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(cfg dict, state dict) of seed number ``index`` in SAELens's inference format.

    ``metadata`` adds SAELens metadata fields (e.g. ``hook_name``, ``model_name``).
    """
    cfg = sae.config
    kind = sae.kind
    meta: dict[str, Any] = {
        "sae_lens_version": SAELENS_FORMAT_VERSION,
        "sae_lens_training_version": None,
        "training_architecture": cfg.architecture,
        **(metadata or {}),
        "husai": {"seed": sae.seeds[index], **cfg.hyperparams()},
    }
    cfg_dict: dict[str, Any] = {
        "architecture": kind,
        "d_in": cfg.d_in,
        "d_sae": cfg.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
    }
    if kind == "topk":
        cfg_dict["k"] = cfg.k
        cfg_dict["rescale_acts_by_decoder_norm"] = False
    cfg_dict["metadata"] = meta
    state = {
        name: sae.params[name][index].detach().to("cpu", torch.float32).contiguous()
        for name in INFERENCE_PARAMS[kind]
    }
    return cfg_dict, state


def from_saelens(cfg: dict[str, Any], state: dict[str, torch.Tensor]) -> BatchedSAE:
    """A batch of one SAE from SAELens's (cfg dict, state dict).

    Checkpoints written by :func:`to_saelens` get back their training configuration
    and seed. Other SAELens checkpoints of architecture standard, topk, jumprelu or
    gated are read with a configuration built from cfg (seed 0); a TopK SAE saved
    with ``rescale_acts_by_decoder_norm`` has its decoder norms folded on the way in.
    """
    kind = cfg.get("architecture")
    if kind not in INFERENCE_PARAMS:
        raise HusaiError(
            f"unsupported SAELens architecture {kind!r} (supported: {', '.join(INFERENCE_PARAMS)})"
        )
    if cfg.get("normalize_activations", "none") != "none":
        raise HusaiError(
            "SAELens checkpoints with normalize_activations = "
            f"{cfg['normalize_activations']!r} are not supported"
        )
    if not cfg.get("apply_b_dec_to_input", True):
        raise HusaiError("SAELens checkpoints with apply_b_dec_to_input = false are not supported")
    ours = (cfg.get("metadata") or {}).get("husai")
    if ours is not None:
        ours = dict(ours)
        seed = int(ours.pop("seed"))
        names = {f.name for f in dataclasses.fields(SAEHyperparams)}
        hp = {k: (tuple(v) if isinstance(v, list) else v) for k, v in ours.items() if k in names}
        config = SAEConfig(d_in=int(cfg["d_in"]), **hp)
    else:
        seed = 0
        arch = kind if kind in ARCHITECTURES else "standard"
        config = SAEConfig(
            architecture=arch,
            d_in=int(cfg["d_in"]),
            d_sae=int(cfg["d_sae"]),
            k=int(cfg.get("k", 1)) if kind == "topk" else 1,
        )
    if int(cfg["d_in"]) != config.d_in or int(cfg["d_sae"]) != config.d_sae:
        raise HusaiError("cfg d_in/d_sae disagree with metadata.husai")
    missing = [n for n in INFERENCE_PARAMS[kind] if n not in state]
    if missing:
        raise HusaiError(f"SAELens {kind} state dict lacks {', '.join(missing)}")
    params = {
        n: state[n].detach().to(torch.float32).unsqueeze(0).clone() for n in INFERENCE_PARAMS[kind]
    }
    if kind == "topk" and cfg.get("rescale_acts_by_decoder_norm", False):
        norms = params["W_dec"].norm(dim=-1)
        params["W_dec"] = params["W_dec"] / norms.unsqueeze(-1)
        params["W_enc"] = params["W_enc"] * norms.unsqueeze(1)
        params["b_enc"] = params["b_enc"] * norms
    return BatchedSAE(config, (seed,), params)
