"""Control domains: SAE training data whose ground truth is known by construction.

The pipeline trains and analyses SAEs per domain (a DVC ``foreach`` dimension):

- ``modular``: the transformer's activations (stage ``activations``; husai.fourier holds
  its ground truth);
- ``synthetic`` (positive control): sparse non-negative combinations of planted unit
  feature directions, generated with SAELens's ``sae_lens.synthetic``
  (``FeatureDictionary`` for the directions, ``ActivationGenerator`` for which features
  fire and how strongly). When the dictionary can hold every feature, stability across
  seeds must be high and the SAEs must recover the planted directions;
- ``circles`` (negative control): points on round circles in orthogonal 2-D planes, the
  structure of the modular model's ``hook_resid_post``. Rotation within a plane is an
  exact symmetry of the data, so no single atom is identifiable: a good instrument must
  report low one-to-one stability there, whatever the SAE.

Everything is seeded by the domain's params; generation uses its own RNG state
(``torch.random.fork_rng``), so it neither reads nor disturbs the global one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from husai.config import CirclesParams, SyntheticParams
from husai.errors import HusaiError


@dataclass(frozen=True)
class DomainData:
    """A control domain's SAE training data ``x`` and its ground truth."""

    name: str
    x: torch.Tensor  # [n, d_in] float32
    truth: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def d_in(self) -> int:
        return int(self.x.shape[1])


def firing_probabilities(spec: SyntheticParams) -> torch.Tensor:
    """Per-feature firing probabilities [n_features] whose sum is ``spec.l0``.

    ``constant``: every feature fires with probability l0 / n_features. ``zipfian``:
    SAELens's power-law profile, rescaled so that the expected L0 is ``spec.l0``.
    """
    from sae_lens.synthetic import zipfian_firing_probabilities

    f = spec.n_features
    if spec.firing == "constant":
        return torch.full((f,), spec.l0 / f)
    if spec.firing == "zipfian":
        p = zipfian_firing_probabilities(f, exponent=spec.zipf_exponent)
        p = p * (spec.l0 / float(p.sum()))
        if float(p.max()) > 1.0:
            raise HusaiError(
                f"zipfian firing with l0 {spec.l0:g} over {f} features needs a probability "
                f"above 1 ({float(p.max()):.3g}); lower l0 or zipf_exponent"
            )
        return p
    raise HusaiError(f"unknown firing profile {spec.firing!r} (constant | zipfian)")


def synthetic_generator(truth: dict[str, torch.Tensor]):
    """SAELens's ``FeatureDictionary`` and ``ActivationGenerator`` of a synthetic domain,
    rebuilt from its saved ground truth (directions, probabilities, magnitudes,
    correlation): what ``sae_lens.synthetic.eval_sae_on_synthetic_data`` takes."""
    from sae_lens.synthetic import ActivationGenerator, FeatureDictionary

    features = truth["features"]
    fd = FeatureDictionary(features.shape[0], features.shape[1], initializer=None, seed=0)
    with torch.no_grad():
        fd.feature_vectors.copy_(features)
    corr = truth.get("correlation")
    gen = ActivationGenerator(
        features.shape[0],
        truth["firing_probabilities"].clone(),
        std_firing_magnitudes=truth["magnitude_std"].clone(),
        mean_firing_magnitudes=truth["magnitude_mean"].clone(),
        correlation_matrix=None if corr is None else corr.clone(),
    )
    return fd, gen


def synthetic_domain(spec: SyntheticParams) -> DomainData:
    """Planted features through SAELens's generator: ``x = a @ F`` with ``a`` [n, F]
    sparse non-negative activations and ``F`` [F, d_in] unit feature directions.

    Ground truth: ``features`` (the directions), ``firing_probabilities``,
    ``magnitude_mean``, ``magnitude_std`` (per feature) and, with correlated firing,
    ``correlation`` ([F, F]); meta ``true_l0``: the mean L0 of the samples drawn.
    """
    from sae_lens.synthetic import (
        FeatureDictionary,
        generate_random_correlation_matrix,
        orthogonal_initializer,
    )

    f = spec.n_features
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        fd = FeatureDictionary(
            f,
            spec.d_in,
            initializer=orthogonal_initializer() if spec.orthogonalize else None,
            seed=spec.seed,
        )
        features = fd.feature_vectors.detach().clone()
        features = features / features.norm(dim=1, keepdim=True)
        truth = {
            "features": features.contiguous(),
            "firing_probabilities": firing_probabilities(spec),
            "magnitude_mean": torch.full((f,), float(spec.magnitude_mean)),
            "magnitude_std": torch.full((f,), float(spec.magnitude_std)),
        }
        if spec.correlated_fraction > 0:
            truth["correlation"] = generate_random_correlation_matrix(
                f,
                uncorrelated_ratio=1.0 - spec.correlated_fraction,
                min_correlation_strength=min(0.01, spec.correlation_strength),
                max_correlation_strength=spec.correlation_strength,
                seed=spec.seed,
            )
        fd, gen = synthetic_generator(truth)
        torch.manual_seed(spec.seed + 1)
        acts = gen.sample(spec.n)
        with torch.no_grad():
            x = fd(acts).to(torch.float32).contiguous()
    true_l0 = float((acts > 0).sum(dim=1).to(torch.float64).mean())
    return DomainData("synthetic", x, truth, {"true_l0": true_l0})


def _orthonormal(n: int, d: int, seed: int) -> torch.Tensor:
    """``n`` orthonormal rows in R^d: a seeded Gaussian matrix, orthonormalised by
    Gram-Schmidt (twice, for accuracy) with elementwise products and torch's own sums.
    Not LAPACK's QR: its result may differ in the last bits between processes (the
    library's kernels depend on memory alignment), and every bit of the data matters."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randn(n, d, generator=g, dtype=torch.float64)
    out: list[torch.Tensor] = []
    for v in rows:
        for _ in range(2):
            for u in out:
                v = v - (v * u).sum() * u
        out.append(v / (v * v).sum().sqrt())
    return torch.stack(out).contiguous()


def circles_domain(spec: CirclesParams) -> DomainData:
    """Row i is ``sum_j r_j (cos(t_j) u_j + sin(t_j) v_j) + noise`` with
    ``t_j = 2 pi f_j c / points`` and ``c = i mod points``: one point on each of the
    circles, as the modular model's residual stream holds the answer c on one circle per
    key frequency. The planes (u_j, v_j) are random orthonormal directions in R^d_in.

    Ground truth: ``planes`` [P, 2, d_in] (orthonormal rows), ``c`` [n], each row's
    angle on each circle ``angles`` [n, P], and per plane ``plane_frequency``,
    ``plane_variable`` (``sum``: c plays the modular model's a + b) and ``plane_share``
    (r_j^2 / sum r^2, the share of the variance without noise).
    """
    if len(spec.frequencies) != len(spec.radii):
        raise HusaiError(
            f"circles: {len(spec.frequencies)} frequencies but {len(spec.radii)} radii "
            "(one of each per circle)"
        )
    n_circles = len(spec.radii)
    if 2 * n_circles > spec.d_in:
        raise HusaiError(f"circles: {n_circles} planes do not fit in d_in = {spec.d_in}")
    basis = _orthonormal(2 * n_circles, spec.d_in, spec.seed)
    planes = basis.view(n_circles, 2, spec.d_in)
    c = torch.arange(spec.n, dtype=torch.int64) % spec.points
    x = torch.zeros(spec.n, spec.d_in, dtype=torch.float64)
    for j, (freq, radius) in enumerate(zip(spec.frequencies, spec.radii, strict=True)):
        t = (2 * math.pi * freq / spec.points) * c.to(torch.float64)
        x += radius * (torch.cos(t)[:, None] * planes[j, 0] + torch.sin(t)[:, None] * planes[j, 1])
    if spec.noise > 0:
        g = torch.Generator().manual_seed(spec.seed + 1)
        x += spec.noise * torch.randn(spec.n, spec.d_in, generator=g, dtype=torch.float64)
    from husai.planes import VARIABLES

    angles = torch.stack(
        [(2 * math.pi * f / spec.points) * c.to(torch.float64) for f in spec.frequencies], dim=1
    ).remainder(2 * math.pi)
    radii = torch.tensor(spec.radii, dtype=torch.float64)
    truth = {
        "planes": planes.to(torch.float32).contiguous(),
        "c": c,
        "angles": angles.contiguous(),
        "plane_frequency": torch.tensor(spec.frequencies, dtype=torch.int64),
        "plane_variable": torch.full((n_circles,), VARIABLES.index("sum"), dtype=torch.int64),
        "plane_share": radii.pow(2) / radii.pow(2).sum(),
    }
    return DomainData("circles", x.to(torch.float32).contiguous(), truth, {})
