"""Stage ``geometry``: what is conserved across seeds when single atoms are not.

Reads the activations (with their ground-truth Fourier directions) and the baseline
SAEs of stage ``saes`` (the configurations named in ``geometry.configs``, default
all), and measures, by the definitions of :mod:`husai.geometry`:

* the activations' spectrum and effective rank (SCIENCE.md section 7, question 4);
* each decoder's Gram spectrum (eigenvalues of ``W_dec W_dec^T`` for unit atoms,
  normalised to sum 1), how far the seeds' spectra are from each other and from
  two references of the same shape;
* the overlap of the seeds' top-r decoder subspaces, at every rank, beside the
  random expectation ``r / d_in`` and the references;
* atom groups: each atom is put in the group of the key frequency whose ground-truth
  subspace holds at least ``geometry.group_min_share`` of it; for each key frequency
  and pair of seeds, whether the group's subspace is conserved (``group_overlap``,
  ``atom_in_span``) while single atoms are not (``atom_match``), against random
  subspaces and shuffled groups (``null_overlap``).

Atoms: with ``geometry.live_only`` (default) only the decoder atoms of live
latents (non-zero on at least one input of the grid) are analysed. A dead latent's
atom is a direction training never used (still near its initialisation, or moved only
by the AuxK loss), so it says nothing about what the SAE learned; at the baseline about
70% of TopK latents are dead. With ``live_only: false`` every atom counts, as in the
stability metrics of SCIENCE.md section 4.

References, for each configuration, with ``n_ref`` atoms (the mean number of analysed
atoms per seed): ``isotropic`` = two dictionaries of Gaussian directions
(``husai.baselines.isotropic_dictionary`` with seeds ``geometry.seed`` and
``geometry.seed + 1``); ``data_sample`` = two dictionaries whose atoms are ``n_ref``
centred activation rows drawn at random (seeds ``geometry.seed`` and ``+ 1``; without
replacement when ``n_ref <= N``): what the activations' own geometry gives without
any learning. Group-label shuffles of seed number i are drawn from seed
``geometry.seed + i``.

``metrics/geometry.json``::

    {
      "activations": {"n": 12769, "d_in": 128, "effective_rank": ..., "participation_ratio": ...,
                      "dims_for_variance": {"0.9": d, "0.95": d, "0.99": d},
                      "variance_share_top": [first 16 shares]},
      "ground_truth": {"key_frequencies": [..], "subspace_dims": {"<k>": dim},
                       "variance_share_in_span": share of the centred activations'
                                                 variance in the span of all ground-truth directions,
                       "group_min_share": 0.5},
      "configs": {
        "<config>": {
          "architecture": ..., "seeds": [...], "d_sae": 1024, "d_in": 128,
          "live_only": true, "n_live": VSTATS,  # live latents per seed
          "n_atoms_analysed": [per seed], "n_reference_atoms": n_ref,
          "pwmcc": STATS,                         # single atoms (of the analysed atoms)
          "gram": {
            "summary": {"effective_rank" | "participation_ratio" | "numerical_rank" |
                        "top_eigenvalue" | "self_max_cos": VSTATS},
            "seed_distance": STATS,               # TV distance between two seeds' spectra
            "distance_to_isotropic": VSTATS,      # each seed vs the isotropic reference
            "distance_to_data_sample": VSTATS,
            "isotropic": GRAM, "isotropic_pair_distance": float,
            "data_sample": GRAM, "data_sample_pair_distance": float
          },
          "subspace": {
            "overlap": {"<r>": STATS},            # between seeds
            "random_expectation": {"<r>": r / d_in},
            "isotropic_overlap": {"<r>": float},  # the two isotropic references
            "data_sample_overlap": {"<r>": float},
            "activation_pca_overlap": {"<r>": VSTATS}  # decoder top-r vs activations' top-r PCs
          },
          "groups": {
            "fraction_grouped": VSTATS, "sizes": {"<k>": VSTATS},
            "per_frequency": {"<k>": {"rank": mean r over pairs (0: empty), "group_overlap": STATS,
                                       "atom_in_span": STATS, "atom_match": STATS,
                                       "null_overlap": STATS, "random_overlap": mean r / d_in
                                       over the pairs where the group is not empty}},
            "all": {"group_overlap" | "atom_in_span" | "atom_match" | "null_overlap": STATS,
                    "random_overlap": float | null},   # per pair, mean over its groups
            "data_sample": {"group_overlap" | "atom_in_span" | "atom_match" |
                            "null_overlap": float | null}   # the data-sample pair, mean over groups
          }
        }
      }
    }

STATS: :meth:`husai.stats.SeedStats.to_dict` over seed pairs (seed-bootstrap CI;
where some pairs are undefined, e.g. an empty group, mean and std of the rest and
no CI); VSTATS: the same over per-seed values; GRAM:
:func:`husai.geometry.gram_summary`. Ranks ``<r>`` are ``geometry.ranks`` up to
the smallest number of analysed atoms of a seed, and ``d_in``; the overlap CSV
has every rank up to that bound (blank beyond).

``metrics/curves/geometry_spectrum.csv``: ``index`` (1..d_in),
``activation_variance_share``, and per configuration ``<config>_gram_eigenvalue``
(mean over seeds), ``<config>_isotropic_gram_eigenvalue``,
``<config>_data_sample_gram_eigenvalue`` (zeros beyond the number of atoms).
``metrics/curves/geometry_overlap.csv``: ``rank`` (1..d_in), ``random_expectation``,
and per configuration ``<config>_subspace_overlap`` (mean over pairs),
``<config>_data_sample_overlap``, ``<config>_activation_pca_overlap`` (mean over seeds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from stages._artifacts import load_activations
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_csv, write_json
from stages._pairs import load_config_saes

GROUP_METRICS = ("group_overlap", "atom_in_span", "atom_match", "null_overlap")
GRAM_KEYS = ("effective_rank", "participation_ratio", "numerical_rank", "top_eigenvalue",
             "self_max_cos")


def data_sample_dictionary(x, n_atoms: int, seed: int):
    """``n_atoms`` centred activation rows chosen at random, as unit atoms."""
    import torch

    from husai.determinism import generator
    from husai.stability import unit_rows

    xc = x.to(torch.float64) - x.to(torch.float64).mean(dim=0, keepdim=True)
    g = generator(seed)
    n = xc.shape[0]
    idx = (torch.randperm(n, generator=g)[:n_atoms] if n_atoms <= n
           else torch.randint(0, n, (n_atoms,), generator=g))
    return unit_rows(xc[idx])


def _mean(values: list[float | None]) -> float | None:
    from husai.geometry import finite_mean

    return finite_mean(values)


@stage("geometry")
def main(
    params: Path = PARAMS_OPTION,
    activations: Path = typer.Option(Path("data/activations.safetensors"),
                                     help="Activations with ground-truth directions."),
    models: Path = typer.Option(Path("models/saes"), help="SAE checkpoints of stage saes."),
    metrics: Path = typer.Option(Path("metrics/geometry.json"), help="Metrics JSON to write."),
    spectrum_csv: Path = typer.Option(Path("metrics/curves/geometry_spectrum.csv"),
                                      help="Spectra CSV for dvc plots."),
    overlap_csv: Path = typer.Option(Path("metrics/curves/geometry_overlap.csv"),
                                     help="Subspace-overlap CSV for dvc plots."),
) -> None:
    """Spectra, subspaces and atom groups of the baseline SAEs (params.yaml `geometry`)."""
    from husai.geometry import one_thread

    prm = load_params(params)
    configs = prm.analysis_configs("geometry")
    setup(prm)
    acts = load_activations(activations)
    saes = {name: load_config_saes(models, name, hp.seeds, acts.d_in)
            for name, hp in configs.items()}
    with one_thread():  # small dense linear algebra only (husai.geometry.one_thread)
        out, spectrum_cols, overlap_cols = _analyse(prm, acts, configs, saes)
    d_in = acts.d_in

    def columns(cols: dict[str, list], index: str) -> tuple[list[str], list[list]]:
        names = [index, *cols]
        rows = [[i + 1] + [v[i] if i < len(v) else None for v in cols.values()]
                for i in range(d_in)]
        return names, rows

    write_json(metrics, out)
    write_csv(spectrum_csv, *columns(spectrum_cols, "index"))
    write_csv(overlap_csv, *columns(overlap_cols, "rank"))
    console.print(f"geometry: activations effective rank "
                  f"{out['activations']['effective_rank']:.1f}; {len(saes)} configurations "
                  f"-> {metrics}")


def _analyse(prm, acts, configs, saes) -> tuple[dict[str, Any], dict[str, list], dict[str, list]]:
    """Everything of the module docstring: the JSON and the two CSVs' columns."""
    import torch

    from husai.baselines import isotropic_dictionary
    from husai.errors import HusaiError
    from husai.geometry import (
        activation_spectrum,
        assign_groups,
        compare_group_spans,
        gram_spectrum,
        gram_summary,
        group_bases,
        group_spans,
        overlap_curve,
        principal_directions,
        spectrum_distance,
    )
    from husai.recovery import live_latents, present_directions
    from husai.stability import pwmcc
    from husai.stats import pair_matrix, pair_stats, per_seed_stats

    geo = prm.geometry
    x = acts.x.to(torch.float64)
    d_in = acts.d_in

    # activations and ground truth
    spec = activation_spectrum(x)
    pcs = principal_directions(x, centre=True)
    keys = list(acts.key_frequencies)
    present = present_directions(acts.gt_directions, acts.gt_energy_share)
    bases = group_bases(acts.gt_directions, acts.gt_frequency, keys, present)
    dims = [q.shape[1] for q in bases]
    xc = x - x.mean(dim=0, keepdim=True)
    span = group_bases(acts.gt_directions, torch.zeros_like(acts.gt_frequency), [0], present)[0]
    total_var = float(xc.pow(2).sum())
    in_span = float((xc @ span).pow(2).sum()) / total_var if total_var > 0 else 0.0
    out: dict[str, Any] = {
        "activations": {"n": int(x.shape[0]), "d_in": d_in,
                        "effective_rank": spec["effective_rank"],
                        "participation_ratio": spec["participation_ratio"],
                        "dims_for_variance": spec["dims_for_variance"],
                        "variance_share_top": spec["variance_share"][:16]},
        "ground_truth": {"key_frequencies": keys,
                         "subspace_dims": {str(k): d for k, d in zip(keys, dims, strict=True)},
                         "variance_share_in_span": in_span,
                         "group_min_share": geo.group_min_share},
        "configs": {},
    }
    spectrum_cols: dict[str, list] = {"activation_variance_share": spec["variance_share"]}
    overlap_cols: dict[str, list] = {"random_expectation": [r / d_in for r in range(1, d_in + 1)]}

    for name, sae in saes.items():
        hp = configs[name]
        seeds = list(hp.seeds)
        n = len(seeds)
        full = sae.decoder_atoms().to(torch.float64)  # [S, d_sae, d_in]
        d_sae = full.shape[1]
        live = [live_latents(sae.select(i).encode(acts.x)[0]) for i in range(n)]
        if geo.live_only:
            for seed, mask in zip(seeds, live, strict=True):
                if int(mask.sum()) < 2:
                    raise HusaiError(f"geometry: {name} seed {seed} has {int(mask.sum())} live "
                                     "latents; set geometry.live_only false to use every atom")
        dec = [full[i][live[i]] if geo.live_only else full[i] for i in range(n)]
        n_atoms = [len(a) for a in dec]
        n_ref = round(sum(n_atoms) / n)
        max_rank = min(*n_atoms, d_in)
        all_ranks = list(range(1, max_rank + 1))
        ranks = [r for r in geo.ranks if r <= max_rank]
        iso = [isotropic_dictionary(n_ref, d_in, geo.seed + i).to(torch.float64) for i in (0, 1)]
        sample = [data_sample_dictionary(x, n_ref, geo.seed + i) for i in (0, 1)]

        # Gram spectra
        lams = [gram_spectrum(dec[i]) for i in range(n)]
        iso_lam, sample_lam = gram_spectrum(iso[0]), gram_spectrum(sample[0])
        summaries = [gram_summary(dec[i]) for i in range(n)]
        seed_dist = pair_matrix(n)
        # single atoms and subspaces, every pair
        pw = pair_matrix(n)
        dirs = [principal_directions(dec[i]) for i in range(n)]
        curves = {r: pair_matrix(n) for r in all_ranks}
        labels = [assign_groups(dec[i], bases, geo.group_min_share) for i in range(n)]
        spans = [group_spans(dec[i], labels[i], dims, null_rounds=geo.null_rounds,
                             seed=geo.seed + i) for i in range(n)]
        groups = {m: [pair_matrix(n) for _ in keys] for m in GROUP_METRICS}
        group_all = {m: pair_matrix(n) for m in GROUP_METRICS}
        group_rank: list[list[int]] = [[] for _ in keys]
        for i in range(n):
            for j in range(i + 1, n):
                seed_dist[i, j] = seed_dist[j, i] = spectrum_distance(lams[i], lams[j])
                pw[i, j] = pw[j, i] = pwmcc(dec[i], dec[j])
                for r, v in overlap_curve(dirs[i], dirs[j], all_ranks).items():
                    curves[r][i, j] = curves[r][j, i] = v
                pairs = compare_group_spans(spans[i], spans[j], dims)
                for g, gp in enumerate(pairs):
                    group_rank[g].append(gp.rank)
                    for m in GROUP_METRICS:
                        value = getattr(gp, m)
                        groups[m][g][i, j] = groups[m][g][j, i] = (
                            float("nan") if value is None else value)
                for m in GROUP_METRICS:
                    v = _mean([getattr(gp, m) for gp in pairs])
                    group_all[m][i, j] = group_all[m][j, i] = float("nan") if v is None else v
        sample_pairs = compare_group_spans(*[
            group_spans(sample[i], assign_groups(sample[i], bases, geo.group_min_share), dims,
                        null_rounds=geo.null_rounds, seed=geo.seed + i) for i in (0, 1)], dims)
        pca_overlap = [overlap_curve(dirs[i], pcs, all_ranks) for i in range(n)]
        iso_curve = overlap_curve(principal_directions(iso[0]), principal_directions(iso[1]),
                                  all_ranks)
        sample_curve = overlap_curve(principal_directions(sample[0]),
                                     principal_directions(sample[1]), all_ranks)
        random_overlap = [_mean([r_ / d_in if r_ else None for r_ in group_rank[g]])
                          for g in range(len(keys))]

        out["configs"][name] = {
            "architecture": sae.config.architecture,
            "seeds": seeds,
            "d_sae": d_sae,
            "live_only": geo.live_only,
            "n_live": per_seed_stats([float(m.sum()) for m in live]),
            "n_atoms_analysed": n_atoms,
            "n_reference_atoms": n_ref,
            "d_in": d_in,
            "pwmcc": pair_stats(pw),
            "gram": {
                "summary": {k: per_seed_stats([s[k] for s in summaries]) for k in GRAM_KEYS},
                "seed_distance": pair_stats(seed_dist),
                "distance_to_isotropic": per_seed_stats(
                    [spectrum_distance(lam, iso_lam) for lam in lams]),
                "distance_to_data_sample": per_seed_stats(
                    [spectrum_distance(lam, sample_lam) for lam in lams]),
                "isotropic": gram_summary(iso[0]),
                "isotropic_pair_distance": spectrum_distance(iso_lam, gram_spectrum(iso[1])),
                "data_sample": gram_summary(sample[0]),
                "data_sample_pair_distance": spectrum_distance(sample_lam,
                                                               gram_spectrum(sample[1])),
            },
            "subspace": {
                "overlap": {str(r): pair_stats(curves[r]) for r in ranks},
                "random_expectation": {str(r): r / d_in for r in ranks},
                "isotropic_overlap": {str(r): iso_curve[r] for r in ranks},
                "data_sample_overlap": {str(r): sample_curve[r] for r in ranks},
                "activation_pca_overlap": {
                    str(r): per_seed_stats([c[r] for c in pca_overlap]) for r in ranks},
            },
            "groups": {
                "fraction_grouped": per_seed_stats(
                    [float((lab >= 0).to(torch.float64).mean()) for lab in labels]),
                "sizes": {str(k): per_seed_stats([float((lab == g).sum()) for lab in labels])
                          for g, k in enumerate(keys)},
                "per_frequency": {
                    str(k): {"rank": _mean([float(r_) for r_ in group_rank[g]]),
                             **{m: pair_stats(groups[m][g]) for m in GROUP_METRICS},
                             "random_overlap": random_overlap[g]}
                    for g, k in enumerate(keys)},
                "all": {**{m: pair_stats(group_all[m]) for m in GROUP_METRICS},
                        "random_overlap": _mean(random_overlap)},
                "data_sample": {m: _mean([getattr(gp, m) for gp in sample_pairs])
                                for m in GROUP_METRICS},
            },
        }
        mean_lam = torch.stack(lams).mean(0).tolist()
        spectrum_cols[f"{name}_gram_eigenvalue"] = mean_lam
        spectrum_cols[f"{name}_isotropic_gram_eigenvalue"] = iso_lam.tolist()
        spectrum_cols[f"{name}_data_sample_gram_eigenvalue"] = sample_lam.tolist()
        overlap_cols[f"{name}_subspace_overlap"] = [pair_stats(curves[r])["mean"]
                                                    for r in all_ranks]
        overlap_cols[f"{name}_data_sample_overlap"] = [sample_curve[r] for r in all_ranks]
        overlap_cols[f"{name}_activation_pca_overlap"] = [
            sum(c[r] for c in pca_overlap) / n for r in all_ranks]
        c = out["configs"][name]
        console.print(
            f"geometry: {name}: gram eff. rank {c['gram']['summary']['effective_rank']['mean']:.1f}"
            f" (isotropic {c['gram']['isotropic']['effective_rank']:.1f}), overlap r=16 "
            f"{(c['subspace']['overlap'].get('16') or {}).get('mean')}, groups: overlap "
            f"{c['groups']['all']['group_overlap']['mean']}, atom match "
            f"{c['groups']['all']['atom_match']['mean']}")

    return out, spectrum_cols, overlap_cols
