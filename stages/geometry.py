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

``metrics/geometry.json``: :class:`husai.records.GeometryMetrics`: the activations'
spectrum summary (:class:`husai.records.ActivationSummary`), the ground truth's group
subspaces (:class:`husai.records.GroundTruthSummary`) and, per configuration, a
:class:`husai.records.GeometryConfig`: live latents and analysed atoms per seed,
single-atom ``pwmcc``; ``gram``: Gram-spectrum summaries over seeds, the TV distance
between two seeds' spectra (``seed_distance``) and from each reference, and the
references' own :func:`husai.geometry.gram_summary`; ``subspace``: per rank ``<r>``
the overlap between seeds, ``r / d_in``, the references' overlaps and each seed's
overlap with the activations' top-r principal components; ``groups``: the share of
grouped atoms, group sizes, and per key frequency ``<k>`` (and over all groups) the
group measures ``group_overlap``, ``atom_in_span``, ``atom_match``, ``null_overlap``
between seed pairs, beside ``random_overlap`` (mean r / d_in over the pairs where the
group is not empty) and the data-sample pair (``data_sample``). Statistics are
:class:`husai.records.Stat` records, over seed pairs (seed-bootstrap CI; where some
pairs are undefined, e.g. an empty group, mean and std of the rest and no CI) or over
per-seed values. Ranks ``<r>`` are ``geometry.ranks`` up to the smallest number of
analysed atoms of a seed, and ``d_in``; the overlap CSV has every rank up to that
bound (blank beyond).

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

from husai.records import GeometryMetrics
from stages._artifacts import load_activations
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_csv, write_json
from stages._pairs import load_config_saes
from stages._progress import progress


@stage("geometry")
def main(
    params: Path = PARAMS_OPTION,
    activations: Path = typer.Option(
        Path("data/domains/modular.safetensors"), help="Activations with ground-truth directions."
    ),
    models: Path = typer.Option(Path("models/saes/modular"), help="SAE checkpoints of stage saes."),
    metrics: Path = typer.Option(Path("metrics/geometry.json"), help="Metrics JSON to write."),
    spectrum_csv: Path = typer.Option(
        Path("metrics/curves/geometry_spectrum.csv"), help="Spectra CSV for dvc plots."
    ),
    overlap_csv: Path = typer.Option(
        Path("metrics/curves/geometry_overlap.csv"), help="Subspace-overlap CSV for dvc plots."
    ),
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
    saes = {name: load_config_saes(models, name, hp.seeds, d_in) for name, hp in configs.items()}
    options = GeometryOptions(
        ranks=tuple(geo.ranks),
        group_min_share=geo.group_min_share,
        null_rounds=geo.null_rounds,
        seed=geo.seed,
        live_only=geo.live_only,
    )
    act_geo = activation_geometry(acts.x, ground_truth(acts), acts.key_frequencies)
    out = {**act_geo.summary(geo.group_min_share), "configs": {}}
    spectrum_cols = {"activation_variance_share": act_geo.spectrum["variance_share"]}
    overlap_cols = {"random_expectation": [r / d_in for r in range(1, d_in + 1)]}
    with progress() as bar:
        task = bar.add_task("geometry: configurations", total=len(saes))
        for name, sae in saes.items():
            bar.update(task, description=f"geometry: {name}")
            try:
                result = config_geometry(sae, act_geo, options)
            except FewLiveLatents as err:
                raise HusaiError(
                    f"geometry: {name} seed {err.seed} has {err.n_live} live latents; "
                    "set geometry.live_only false to use every atom"
                ) from err
            out["configs"][name] = c = result.summary
            spectrum_cols |= {f"{name}_{k}": v for k, v in result.spectra.items()}
            overlap_cols |= {f"{name}_{k}": v for k, v in result.overlaps.items()}
            console.print(
                f"geometry: {name}: gram eff. rank {c['gram']['summary']['effective_rank']['mean']:.1f}"
                f" (isotropic {c['gram']['isotropic']['effective_rank']:.1f}), overlap r=16 "
                f"{(c['subspace']['overlap'].get('16') or {}).get('mean')}, groups: overlap "
                f"{c['groups']['all']['group_overlap']['mean']}, atom match "
                f"{c['groups']['all']['atom_match']['mean']}"
            )
            bar.advance(task)

    def columns(cols: dict[str, list], index: str) -> tuple[list[str], list[list]]:
        names = [index, *cols]
        rows = [
            [i + 1] + [v[i] if i < len(v) else None for v in cols.values()] for i in range(d_in)
        ]
        return names, rows

    write_json(metrics, out, GeometryMetrics)
    write_csv(spectrum_csv, *columns(spectrum_cols, "index"))
    write_csv(overlap_csv, *columns(overlap_cols, "rank"))
    console.print(
        f"geometry: activations effective rank "
        f"{out['activations']['effective_rank']:.1f}; {len(saes)} configurations "
        f"-> {metrics}"
    )
