"""Stage ``geometry``: what is conserved across seeds when single atoms are not.

Reads the activations (with their ground-truth Fourier directions) and the baseline
SAEs of stage ``saes`` (the configurations named in ``geometry.configs``, default
all), and measures, by the definitions of :mod:`husai.geometry`
(:func:`~husai.geometry.activation_geometry` once, then
:func:`~husai.geometry.config_geometry` per configuration):

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

import typer

from stages._artifacts import load_activations
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_csv, write_json
from stages._pairs import load_config_saes


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
    from husai.errors import HusaiError
    from husai.geometry import (
        FewLiveLatents,
        GeometryOptions,
        activation_geometry,
        config_geometry,
    )
    from stages._analysis import ground_truth

    prm = load_params(params)
    geo = prm.geometry
    configs = prm.analysis_configs("geometry")
    setup(prm)
    acts = load_activations(activations)
    d_in = acts.d_in
    saes = {name: load_config_saes(models, name, hp.seeds, d_in)
            for name, hp in configs.items()}
    options = GeometryOptions(ranks=tuple(geo.ranks), group_min_share=geo.group_min_share,
                              null_rounds=geo.null_rounds, seed=geo.seed,
                              live_only=geo.live_only)
    act_geo = activation_geometry(acts.x, ground_truth(acts), acts.key_frequencies)
    out = {**act_geo.summary(geo.group_min_share), "configs": {}}
    spectrum_cols = {"activation_variance_share": act_geo.spectrum["variance_share"]}
    overlap_cols = {"random_expectation": [r / d_in for r in range(1, d_in + 1)]}
    for name, sae in saes.items():
        try:
            result = config_geometry(sae, act_geo, options)
        except FewLiveLatents as err:
            raise HusaiError(f"geometry: {name} seed {err.seed} has {err.n_live} live latents; "
                             "set geometry.live_only false to use every atom") from err
        out["configs"][name] = c = result.summary
        spectrum_cols |= {f"{name}_{k}": v for k, v in result.spectra.items()}
        overlap_cols |= {f"{name}_{k}": v for k, v in result.overlaps.items()}
        console.print(
            f"geometry: {name}: gram eff. rank {c['gram']['summary']['effective_rank']['mean']:.1f}"
            f" (isotropic {c['gram']['isotropic']['effective_rank']:.1f}), overlap r=16 "
            f"{(c['subspace']['overlap'].get('16') or {}).get('mean')}, groups: overlap "
            f"{c['groups']['all']['group_overlap']['mean']}, atom match "
            f"{c['groups']['all']['atom_match']['mean']}")

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
