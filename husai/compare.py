"""Compare any SAEs: how much two or more dictionaries agree, beside what chance gives.

The instrument of this project applied to SAEs it did not train (``husai compare``).
One argument order throughout: an SAE is one :class:`SAEAtoms` (its name, decoder atoms
and encoder atoms, both ``[d_sae, d_in]``), and a comparison takes SAEs, never loose
encoder / decoder tensors, so the order question of :func:`husai.stability.shared_fraction`
(encoders first) and :func:`husai.stability.pair_metrics` (decoders first) does not
arise.

Per pair (A, B), on the atoms' ``|cos|`` (``absolute``; the signed cosine of Paulo &
Belrose and Song et al. with ``absolute=False``):

* ``pwmcc_ab``: mean over A's atoms of the best ``|cos|`` with B's; ``pwmcc_ba`` the
  other way; ``pwmcc`` their mean (SCIENCE.md section 4). With different widths the
  two directions differ.
* ``hungarian_mcc``: mean matched ``|cos|`` of the one-to-one decoder matching
  (SciPy's ``linear_sum_assignment``), over the ``min(d_sae_a, d_sae_b)`` matched pairs.
* ``shared_fraction`` (Paulo & Belrose 2025): latents whose decoder matching and encoder
  matching pair them with the same latent, both cosines ``>= threshold``, over
  ``min(d_sae_a, d_sae_b)``.
* ``subspace_overlap``: per rank r, the overlap of the two decoders' top-r singular
  subspaces (1 = the same span), and its expectation for random subspaces.
* ``matching``: the decoder matching, latent i of A <-> latent j of B, with the decoder
  cosine, the encoder cosine of the same pair (not of the encoder matching) and
  whether the pair is shared.

Beside each pair, the isotropic reference for the same shapes: dictionaries of random
unit atoms, ``d_sae_a`` and ``d_sae_b`` of them in ``R^d_in``, encoder atoms drawn apart
from decoder atoms (untied, as trained SAEs are), from seeds ``seed + i`` (SAE i's
position). With three or more SAEs, every metric also has its mean over pairs and a
bootstrap CI that resamples SAEs (:func:`husai.stats.seed_stats`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from husai.baselines import isotropic_dictionary
from husai.errors import HusaiError
from husai.stability import (
    DEFAULT_RANKS,
    DEFAULT_THRESHOLD,
    pair_metrics,
)
from husai.stats import BOOT_SEED, N_BOOT, pair_matrix, seed_stats

COMPARE_SCHEMA_VERSION = 1
"""Version of the result layout (:class:`husai.records.CompareResult`): raised when a
field changes meaning or goes away."""

ENCODER_SEED_OFFSET = 1_000_003  # the reference's encoder atoms: seed + i + this
METRICS = ("pwmcc", "hungarian_mcc", "shared_fraction")


@dataclass(frozen=True)
class SAEAtoms:
    """One SAE: a name, and its decoder and encoder atoms, both ``[d_sae, d_in]``
    (decoder rows ``W_dec``; encoder atoms ``W_enc.T``, one row per latent)."""

    name: str
    decoder: torch.Tensor
    encoder: torch.Tensor

    def __post_init__(self) -> None:
        for part in ("decoder", "encoder"):
            t = getattr(self, part)
            if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.shape[0] < 1:
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise HusaiError(f"{self.name}: {part} atoms must be [d_sae, d_in], got {shape}")
            if not bool(torch.isfinite(t).all()):
                raise HusaiError(f"{self.name}: {part} atoms hold NaN or inf values")
        if self.decoder.shape != self.encoder.shape:
            raise HusaiError(
                f"{self.name}: decoder atoms {tuple(self.decoder.shape)} and encoder atoms "
                f"{tuple(self.encoder.shape)} differ in shape"
            )

    @classmethod
    def from_weights(cls, name: str, w_enc: torch.Tensor, w_dec: torch.Tensor) -> SAEAtoms:
        """From SAELens-layout weights: ``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``."""
        w_enc, w_dec = w_enc.detach().to("cpu"), w_dec.detach().to("cpu")
        if w_enc.ndim != 2 or w_enc.shape[::-1] != w_dec.shape:
            raise HusaiError(
                f"{name}: W_enc {tuple(w_enc.shape)} is not the transpose shape of W_dec "
                f"{tuple(w_dec.shape)} ([d_in, d_sae] and [d_sae, d_in])"
            )
        return cls(name, w_dec.contiguous(), w_enc.T.contiguous())

    @property
    def d_sae(self) -> int:
        return int(self.decoder.shape[0])

    @property
    def d_in(self) -> int:
        return int(self.decoder.shape[1])


def isotropic_reference(saes: Sequence[SAEAtoms], seed: int = 0) -> list[SAEAtoms]:
    """One random SAE per SAE of ``saes``, of its width, in the same ``R^d_in``: unit
    Gaussian atoms, decoder from ``seed + i``, encoder from ``seed + i +``
    :data:`ENCODER_SEED_OFFSET` (untied)."""
    return [
        SAEAtoms(
            f"isotropic {i}",
            isotropic_dictionary(s.d_sae, s.d_in, seed + i),
            isotropic_dictionary(s.d_sae, s.d_in, seed + i + ENCODER_SEED_OFFSET),
        )
        for i, s in enumerate(saes)
    ]


def compare_pair(
    a: SAEAtoms,
    b: SAEAtoms,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    ranks: Sequence[int] = DEFAULT_RANKS,
    absolute: bool = True,
    matching: bool = True,
) -> dict[str, Any]:
    """The agreement of SAEs A and B (module docstring); ``matching`` adds the list of
    matched pairs."""
    if a.d_in != b.d_in:
        raise HusaiError(f"{a.name} has d_in {a.d_in} but {b.name} has d_in {b.d_in}")
    pm = pair_metrics(
        a.decoder,
        b.decoder,
        a.encoder,
        b.encoder,
        threshold=threshold,
        ranks=ranks,
        absolute=absolute,
    )
    ab = float(pm.best_match_a.cosine.mean())
    out: dict[str, Any] = {
        "a": a.name,
        "b": b.name,
        "pwmcc": pm.pwmcc,
        "pwmcc_ab": ab,
        "pwmcc_ba": 2.0 * pm.pwmcc - ab,
        "hungarian_mcc": pm.hungarian_mcc,
        "shared_fraction": pm.shared_fraction,
        "subspace_overlap": {str(r): v for r, v in pm.subspace_overlap.items()},
        "subspace_random": {str(r): v for r, v in pm.subspace_random.items()},
    }
    if matching:
        dec = pm.decoder_matching
        assert dec is not None and pm.shared_a is not None
        rows = torch.nonzero(dec.partner >= 0).flatten()
        cols = dec.partner[rows]
        unit = torch.nn.functional.normalize
        enc_cos = (
            unit(a.encoder[rows].double(), dim=1) * unit(b.encoder[cols].double(), dim=1)
        ).sum(1)
        if absolute:
            enc_cos = enc_cos.abs()
        out["matching"] = [
            {
                "a": int(i),
                "b": int(j),
                "decoder_cos": float(dc),
                "encoder_cos": float(ec),
                "shared": bool(sh),
            }
            for i, j, dc, ec, sh in zip(
                rows.tolist(),
                cols.tolist(),
                dec.cosine[rows].tolist(),
                enc_cos.tolist(),
                pm.shared_a[rows].tolist(),
                strict=True,
            )
        ]
    return out


def _stats(
    pairs: list[dict[str, Any]], n: int, key: str, n_boot: int, boot_seed: int
) -> dict[str, Any]:
    m = pair_matrix(n)
    for k, (i, j) in enumerate(itertools.combinations(range(n), 2)):
        m[i, j] = m[j, i] = pairs[k][key]
    return seed_stats(m, n_boot=n_boot, seed=boot_seed).to_dict()


def compare(
    saes: Sequence[SAEAtoms],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    ranks: Sequence[int] = DEFAULT_RANKS,
    absolute: bool = True,
    seed: int = 0,
    n_boot: int = N_BOOT,
    boot_seed: int = BOOT_SEED,
    matching: bool = True,
    lives: Sequence[torch.Tensor] | None = None,
    x: torch.Tensor | None = None,
    subspace_variance: float | None = 0.99,
) -> dict[str, Any]:
    """Every pair of ``saes`` (in order: (0, 1), (0, 2), ..., (1, 2), ...) beside the
    isotropic reference of the same shapes; with three or more SAEs, the mean and
    seed-bootstrap CI of each metric over pairs (``summary``, trained and reference).

    With ``lives`` (one bool ``[d_sae]`` per SAE: the latents that fire on some row of
    the activations ``x [N, d_in]``) also ``live``: :func:`husai.groundtruth.live_stability`
    of the live atoms only (|cos|, whatever ``absolute``), beside random atoms as many as
    each SAE has live latents (isotropic, in the span holding ``subspace_variance`` of
    the activations' variance, and random activation rows; drawn from ``seed + i``), and
    per SAE its live, dead and distinct live counts. The layout is
    :class:`husai.records.CompareResult` less its provenance."""
    if len(saes) < 2:
        raise HusaiError(f"compare needs at least two SAEs, got {len(saes)}")
    names = [s.name for s in saes]
    if len(set(names)) != len(names):
        raise HusaiError(f"SAE names must be distinct, got {names}")
    d_in = {s.d_in for s in saes}
    if len(d_in) != 1:
        detail = ", ".join(f"{s.name}: {s.d_in}" for s in saes)
        raise HusaiError(f"the SAEs must read the same activations (d_in), got {detail}")
    options = {"threshold": threshold, "ranks": ranks, "absolute": absolute}
    reference = isotropic_reference(saes, seed)
    pairs, random = [], []
    for i, j in itertools.combinations(range(len(saes)), 2):
        pair = compare_pair(saes[i], saes[j], matching=matching, **options)
        ref = compare_pair(reference[i], reference[j], matching=False, **options)
        pair["isotropic"] = {k: ref[k] for k in ("pwmcc", "pwmcc_ab", "pwmcc_ba", *METRICS[1:])}
        pairs.append(pair)
        random.append(ref)
    out: dict[str, Any] = {
        "schema_version": COMPARE_SCHEMA_VERSION,
        "saes": [{"name": s.name, "d_sae": s.d_sae, "d_in": s.d_in} for s in saes],
        "options": {
            "threshold": threshold,
            "ranks": [int(r) for r in ranks],
            "cosine": "absolute" if absolute else "signed",
            "seed": seed,
            "n_boot": n_boot,
            "boot_seed": boot_seed,
        },
        "pairs": pairs,
        "summary": None,
    }
    if lives is not None:
        out["live"] = _live(saes, lives, x, seed, threshold, subspace_variance, n_boot, boot_seed)
        out["options"]["live_cosine"] = "absolute"
        for entry, n_live, distinct in zip(
            out["saes"],
            out["live"]["n_live_per_seed"],
            out["live"]["distinct_live_per_seed"],
            strict=True,
        ):
            entry.update(n_live=n_live, n_dead=entry["d_sae"] - n_live, distinct_live=distinct)
    if len(saes) >= 3:
        n = len(saes)
        out["summary"] = {
            key: {
                "trained": _stats(pairs, n, key, n_boot, boot_seed),
                "isotropic": _stats(random, n, key, n_boot, boot_seed),
            }
            for key in METRICS
        }
    return out


def _live(
    saes: Sequence[SAEAtoms],
    lives: Sequence[torch.Tensor],
    x: torch.Tensor | None,
    seed: int,
    threshold: float,
    subspace_variance: float | None,
    n_boot: int,
    boot_seed: int,
) -> dict[str, Any]:
    from husai.groundtruth import live_stability

    if x is None or x.ndim != 2 or x.shape[1] != saes[0].d_in:
        shape = None if x is None else tuple(x.shape)
        raise HusaiError(f"live numbers need activations [N, {saes[0].d_in}], got {shape}")
    if float(x.double().var(0).sum()) == 0.0:
        raise HusaiError("the activations have no variance (every row the same)")
    if len(lives) != len(saes):
        raise HusaiError(f"need one live mask per SAE ({len(saes)}), got {len(lives)}")
    for s, live in zip(saes, lives, strict=True):
        if tuple(live.shape) != (s.d_sae,):
            raise HusaiError(f"{s.name}: live mask {tuple(live.shape)}, expected ({s.d_sae},)")
        if int(live.sum()) < 1:
            raise HusaiError(f"{s.name}: no latent fires on any row of the activations")
    return live_stability(
        [s.decoder for s in saes],
        [s.encoder for s in saes],
        [live.to(torch.bool) for live in lives],
        x,
        [seed + i for i in range(len(saes))],
        threshold=threshold,
        subspace_variance=subspace_variance,
        n_boot=n_boot,
        boot_seed=boot_seed,
    )
