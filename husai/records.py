"""The metrics contract: the layout of every metric file the stages write, declared once.

Each file of ``metrics/`` is described by a *record*, a :class:`typing.TypedDict` (or a
mapping / list of records) below; :data:`FILES` names the record of each file and
:func:`record_for` finds it from a path. A stage checks its output against the record
before it writes it (``stages/_common.py`` ``write_json``; :func:`validate_json`), and
the paper checks each file against the same record when it reads it
(``paper/metrics.py``), so a stage cannot write a file that the paper cannot read.

Two records recur everywhere:

* :class:`Stat`: a statistic over seeds or seed pairs, ``{"mean", "std", "ci": [low,
  high] | null, "n_seeds", "n_pairs"}`` (mean and sample std; ``ci`` the 95%
  seed-bootstrap interval of :mod:`husai.stats`, null below 3 seeds or where some
  pairs are undefined; ``n_pairs`` null for a per-seed quantity). Every writer of a
  statistic (:meth:`husai.stats.SeedStats.to_dict`, :func:`husai.stats.pair_stats`,
  :func:`husai.stats.per_seed_stats`) produces it; there is no other CI format.
* :class:`Ratio`: trained / baseline, ``{"ratio", "ci", "difference",
  "difference_ci", "paired"}`` (:meth:`husai.stats.RatioStats.to_dict`).

Open-ended levels (one entry per configuration, seed, rank, key frequency, predictor
...) are mappings ``dict[str, Record]``: the names vary, the record of each entry does
not. A key marked ``NotRequired`` may be absent (e.g. the data-subspace baseline,
written only when ``analysis.subspace_variance`` is set); ``X | None`` is JSON null.
A JSON number is accepted where a ``float`` is declared (``16`` for ``16.0``), never a
boolean.

This module uses the standard library only: ``paper/`` (which is otherwise independent
of ``husai``) imports it to read the metric files.
"""

# No ``from __future__ import annotations``: the TypedDicts need their annotations
# evaluated, or NotRequired keys would count as required.

import json
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict, Union

# ----------------------------------------------------------------------------- shared records

CI = tuple[float, float]
"""A 95% confidence interval ``[low, high]`` (a JSON array of two numbers)."""


class Stat(TypedDict):
    """A statistic over seeds (``n_pairs`` null) or seed pairs (module docstring)."""

    mean: float | None
    std: float | None
    ci: CI | None
    n_seeds: int
    n_pairs: int | None


class Ratio(TypedDict):
    """Trained / baseline pair means: their ratio and difference, each with its CI."""

    ratio: float | None
    ci: CI | None
    difference: float
    difference_ci: CI | None
    paired: bool


Hyperparameter = int | float | str | bool | list[int] | None
"""One value of ``husai.sae.SAEConfig.hyperparams()`` (tuples are written as lists)."""

Hyperparameters = dict[str, Hyperparameter]


class SAEEvaluation(TypedDict):
    """``husai.sae.evaluate`` of one SAE (SAEBench metrics on the activation dataset)."""

    explained_variance: float
    l0: float
    frac_alive: float
    mse: float
    cossim: float
    l2_ratio: float


# ----------------------------------------------------------------------------- transformer, fourier


class TransformerMetrics(TypedDict):
    """``metrics/transformer.json`` (stage ``transformer``)."""

    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    grokking_epoch: int | None  # first epoch with test accuracy >= 0.99; null: never
    epochs: int
    grokked: bool  # final test accuracy >= 0.999 (SCIENCE.md section 1)
    fast_forward_max_abs_error: float


class FourierMetrics(TypedDict):
    """``metrics/fourier.json`` (stage ``fourier``, SCIENCE.md section 2)."""

    key_frequencies: list[int]
    embedding_key_frequency_share: float
    activation_hook: str
    activation_position: int
    activation_key_frequency_variance_share: float
    untrained_activation_key_frequency_variance_share: float
    neuron_purity_fraction: float
    pure_neurons_per_key_frequency: dict[str, int]  # "<k>" -> pure MLP neurons
    pure_neurons_off_key_frequencies: int
    activation_effective_rank: float
    untrained_activation_effective_rank: float
    activation_dim: int


# ----------------------------------------------------------------------------- saes


class ActivationInfo(TypedDict):
    """The data the SAEs were trained on: a domain; modular's also names its hook."""

    domain: str
    n: int
    d_in: int
    hook: NotRequired[str]
    position: NotRequired[int]
    p: NotRequired[int]


class SAETraining(TypedDict):
    steps: int  # optimiser steps behind the saved SAE
    activation_scale: float
    final_epoch_loss: float  # of the SAE's last epoch (epochs_run)
    final_epoch_mse: float
    final_epoch_l0: float
    # husai.sae.train_saes: epochs behind the saved SAE, and whether it met the convergence
    # criterion (null: fixed schedule, sae.convergence_tol = 0); absent in files written
    # before the criterion existed
    epochs_run: NotRequired[int]
    converged: NotRequired[bool | None]
    # mean 1 - cos of the fired atoms over the last convergence_window epochs (null: fixed
    # schedule, or no more epochs than the window)
    atom_drift: NotRequired[float | None]


class SAEEntry(TypedDict):
    """One trained SAE (one seed of one configuration)."""

    config: str
    architecture: str
    seed: int
    hyperparameters: Hyperparameters
    metrics: SAEEvaluation
    training: SAETraining


class SaesMetrics(TypedDict):
    """``metrics/saes/<domain>.json`` (stage ``saes``): entries keyed ``"<config>/seed<seed>"``."""

    activations: ActivationInfo
    saes: dict[str, SAEEntry]


# ----------------------------------------------------------------------------- stability, recovery


class SubspaceOverlap(TypedDict):
    """Overlap of the seeds' top-r decoder subspaces at one rank r."""

    trained: Stat
    untrained_mean: float | None
    random_expectation: float  # r / d_in


class StabilitySummary(TypedDict):
    """``husai.analysis.stability_summary`` of one configuration (SCIENCE.md sections 4-5).

    ``<baseline>_<metric>``: baseline ``random`` (isotropic dictionaries, same shape
    and seeds), ``untrained`` (same architecture at initialisation) and, with the
    data-subspace baseline, ``subspace_random``. Hungarian MCC and shared fraction are
    null where the matchings were skipped (sweep cells above
    ``sweep.hungarian_max_d_sae``)."""

    architecture: str
    d_sae: int
    d_in: int
    seeds: list[int]
    pwmcc: Stat
    hungarian_mcc: Stat | None
    shared_fraction: Stat | None
    random_pwmcc: Stat
    random_hungarian_mcc: Stat | None
    random_shared_fraction: Stat | None
    untrained_pwmcc: Stat
    untrained_hungarian_mcc: Stat | None
    untrained_shared_fraction: Stat | None
    random_pwmcc_expected: float  # exact expectation for two isotropic dictionaries
    pwmcc_ratio_to_random: Ratio  # seeds resampled independently
    pwmcc_ratio_to_untrained: Ratio  # paired by seed
    subspace_rank: NotRequired[int | None]
    subspace_random_pwmcc: NotRequired[Stat]
    subspace_random_hungarian_mcc: NotRequired[Stat | None]
    subspace_random_shared_fraction: NotRequired[Stat | None]
    pwmcc_ratio_to_subspace: NotRequired[Ratio]
    subspace_overlap: dict[str, SubspaceOverlap]  # "<r>"
    pair_pwmcc: list[list[float | None]]  # n x n, null on the diagonal


class LiveStability(TypedDict):
    """``husai.groundtruth.live_stability``: stability over live latents beside random
    baselines with as many atoms as each seed has live latents (``isotropic`` in R^d_in,
    ``subspace``: in the data's principal span, ``data``: random data rows)."""

    seeds: list[int]
    live_pwmcc: Stat
    live_hungarian_mcc: Stat | None
    live_shared_fraction: Stat | None
    isotropic_live_pwmcc: Stat
    isotropic_live_hungarian_mcc: Stat | None
    isotropic_live_shared_fraction: Stat | None
    subspace_live_pwmcc: Stat | None
    subspace_live_hungarian_mcc: Stat | None
    subspace_live_shared_fraction: Stat | None
    data_live_pwmcc: Stat
    data_live_hungarian_mcc: Stat | None
    data_live_shared_fraction: Stat | None
    live_pwmcc_ratio_to_isotropic: Ratio
    live_pwmcc_ratio_to_subspace: Ratio | None
    live_pwmcc_ratio_to_data: Ratio
    subspace_rank: int | None
    n_live: Stat
    n_live_per_seed: list[int]
    distinct_live: Stat
    distinct_live_per_seed: list[int]


class GroundTruthRecovery(TypedDict):
    """``husai.groundtruth.truth_summary`` on a control domain: planted ``features``
    (mcc, recovered_fraction, uniqueness, mcc_all_atoms) or ``planes``
    (in_plane_fraction, planes_covered), over live atoms."""

    kind: Literal["features", "planes"]
    mcc: NotRequired[Stat]
    recovered_fraction: NotRequired[Stat]
    uniqueness: NotRequired[Stat]
    mcc_all_atoms: NotRequired[Stat]
    in_plane_fraction: NotRequired[Stat]
    planes_covered: NotRequired[Stat]
    per_seed: dict[str, dict[str, float]]


class SAELensEval(TypedDict):
    """``sae_lens.synthetic.eval_sae_on_synthetic_data`` of the saved checkpoints."""

    mcc: Stat
    uniqueness: Stat
    f1: Stat
    precision: Stat
    recall: Stat
    max_mcc_difference: float  # largest |SAELens MCC - our all-atom MCC| over seeds
    per_seed: dict[str, dict[str, float]]


class PlaneInfo(TypedDict):
    """One ground-truth plane: its key frequency, variable (a, b, sum, diff; null where
    unknown) and share of the data's variance."""

    frequency: int | None
    variable: str | None
    share: float | None


class PlanePerPlane(PlaneInfo):
    """``husai.planes.plane_stability`` of one plane: coverage and assigned atoms per
    seed, agreement per seed pair, the share of seeds whose atoms cover its circle."""

    coverage: Stat
    n_atoms: Stat
    covers: float
    agreement: Stat


class PlaneStability(TypedDict):
    """``husai.planes.plane_stability``: the symmetry-respecting metrics (SCIENCE.md
    section 9) of one configuration, beside count-matched random atoms in the data's
    principal subspace (``subspace_*``)."""

    seeds: list[int]
    min_share: float
    min_concentration: float
    planes: list[PlaneInfo]
    coverage: Stat
    assigned_fraction: Stat
    covered_planes: Stat
    evenness: Stat
    arc_fraction: Stat
    assignment_agreement: Stat
    subspace_coverage: Stat
    subspace_assigned_fraction: Stat
    plane_agreement: Stat
    subspace_plane_agreement: Stat
    partition_ami: Stat
    subspace_partition_ami: Stat
    # the rotation null: each seed's live atoms turned by a random shift of the inputs
    rotation_live_pwmcc: Stat
    rotation_live_hungarian_mcc: Stat | None
    rotation_live_shared_fraction: Stat | None
    per_plane: list[PlanePerPlane]
    per_seed: dict[str, dict[str, float | None]]


class NeuronAlignment(TypedDict):
    """``husai.groundtruth.neuron_alignment``: live atoms against the activation space's
    own basis (neurons at mlp.hook_post), per seed and across seed pairs."""

    seeds: list[int]
    threshold: float
    alignment: Stat
    aligned_fraction: Stat
    neurons_found: Stat
    shared_neurons: Stat
    subspace_alignment: Stat | None
    subspace_aligned_fraction: Stat | None
    per_seed: dict[str, dict[str, float]]


class DomainStability(StabilitySummary):
    """``metrics/stability/<domain>.json`` per configuration: the all-atom summary,
    live-latent stability and, on control domains, ground-truth recovery."""

    live: LiveStability
    ground_truth: NotRequired[GroundTruthRecovery]
    planes: NotRequired[PlaneStability]
    neurons: NotRequired[NeuronAlignment]  # the transformer's hooks
    saelens_eval: NotRequired[SAELensEval]


StabilityMetrics = dict[str, DomainStability]
"""``metrics/stability/modular.json`` (stage ``stability``): one summary per configuration."""


class RecoveryPerSeed(TypedDict):
    """``husai.recovery.recovery_metrics`` of one seed's SAE."""

    n_latents: int
    n_live: int
    n_pure: int
    pure_latent_fraction: float
    key_frequency_coverage: float
    pure_latents_per_key_frequency: dict[str, int]  # "<k>"
    n_ground_truth: int
    decoder_alignment: float
    decoder_alignment_per_key_frequency: dict[str, float | None]  # "<k>"
    random_decoder_alignment: float
    decoder_alignment_energy_weighted: NotRequired[float]


class RecoverySummary(TypedDict):
    """``husai.analysis.recovery_summary`` of one configuration (SCIENCE.md section 3)."""

    pure_latent_fraction: Stat
    key_frequency_coverage: Stat
    decoder_alignment: Stat
    random_decoder_alignment: Stat
    per_seed: dict[str, RecoveryPerSeed]  # "<seed>"


class RecoveryConfig(RecoverySummary):
    """One configuration of ``metrics/recovery.json``."""

    architecture: str
    d_sae: int
    seeds: list[int]
    key_frequencies: list[int]


RecoveryMetrics = dict[str, RecoveryConfig]
"""``metrics/recovery.json`` (stage ``recovery``): one entry per configuration."""


# ----------------------------------------------------------------------------- identifiability map


class IdentifiabilityTraining(TypedDict):
    max_epochs: int
    epochs_run: list[int]  # per seed
    converged: list[bool]  # per seed: the convergence criterion was met before max_epochs


class IdentifiabilityCellMetrics(TypedDict):
    """``husai.idmap.cell_metrics``: reconstruction (means over seeds), stability over all
    atoms, over live atoms, and recovery of the planted features."""

    explained_variance: float
    l0: float
    frac_alive: float
    pwmcc: Stat
    hungarian_mcc: Stat
    shared_fraction: Stat
    live: LiveStability
    ground_truth: GroundTruthRecovery


class IdentifiabilityCell(TypedDict):
    architecture: str
    superposition: int
    width: float
    sparsity: float
    n_features: int
    d_sae: int
    knob: str
    level: float
    true_l0: float
    training: IdentifiabilityTraining
    metrics: IdentifiabilityCellMetrics


IdentifiabilityRow = dict[str, IdentifiabilityCell]
"""``metrics/identifiability/<arch>-s<superposition>.json``: cell name -> cell."""


class PredictsRecovery(TypedDict):
    """``husai.groundtruth.stability_predicts_recovery`` across the map's cells."""

    spearman_rho: float | None
    p_value: float | None
    spearman_ci: list[float] | None
    n_cells: int
    level: float
    threshold: float | None  # every cell with stability >= this recovers >= level
    cells_above: int


class HeadlinePrediction(PredictsRecovery):
    stability: str
    recovery: str


class IdentifiabilitySummaryCell(TypedDict):
    name: str
    architecture: str
    superposition: int
    width: float
    sparsity: float
    n_features: int
    d_sae: int
    level: float
    explained_variance: float
    l0: float
    frac_alive: float
    converged: bool
    pwmcc: float
    shared_fraction: float | None
    live_pwmcc: float
    live_hungarian_mcc: float | None
    mcc: float
    recovered_fraction: float


class IdentifiabilityMetrics(TypedDict):
    """``metrics/identifiability.json`` (stage ``identifiability_summary``)."""

    n_cells: int
    n_not_converged: int
    recovered_level: float
    headline: HeadlinePrediction
    predicts: dict[str, dict[str, PredictsRecovery]]  # stability measure -> recovery measure
    identifiable_cells: list[IdentifiabilitySummaryCell]
    cells: list[IdentifiabilitySummaryCell]


# ----------------------------------------------------------------------------- sweep

Knob = Literal["k", "l1_coefficient", "l0_coefficient"]


class Sparsity(TypedDict):
    knob: Knob
    value: float


class SweepEvaluation(SAEEvaluation):
    """Mean over seeds of each SAEBench metric, and the values of each seed."""

    per_seed: dict[str, SAEEvaluation]  # "<seed>"


class SweepTraining(TypedDict):
    steps: int  # that the batch of seeds ran (a converged seed keeps its state from epochs_run)
    final_epoch_loss: list[float]  # one per seed, of its last epoch (epochs_run)
    epochs_run: NotRequired[list[int]]  # one per seed (as in SAETraining)
    converged: NotRequired[list[bool] | None]  # one per seed; null: fixed schedule
    atom_drift: NotRequired[list[float | None] | None]  # one per seed (as in SAETraining)
    reconstructs: NotRequired[bool]  # mean explained variance >= sweep.min_explained_variance


class SweepSkipped(TypedDict):
    """A sweep configuration not trained (an invalid combination, e.g. k > d_sae)."""

    config: str
    architecture: str
    d_sae: int
    sparsity: Sparsity
    skipped: Literal[True]
    reason: str


class LiveSummary(TypedDict):
    """:func:`husai.analysis.live_summary`: live-atom stability beside its two comparisons."""

    live_pwmcc: Stat
    subspace_live_pwmcc: Stat | None  # count-matched random atoms in the data subspace
    shift_null_live_pwmcc: Stat | None  # the same live atoms, each seed's turned by a shift
    live_shared_fraction: Stat | None
    shift_null_live_shared_fraction: Stat | None
    n_live: Stat
    distinct_live: Stat
    above_shift_null: bool | None  # the live PWMCC's CI above the null's


class SweepLength(TypedDict):
    """A sweep configuration after at most ``epochs`` epochs (a seed that converged
    earlier is at its stop): the training-length axis."""

    epochs: int
    explained_variance: float
    l0: float
    pwmcc: Stat
    pwmcc_ratio_to_random: Ratio
    live: LiveSummary  # without the matchings (shared fractions null)


class SweepTrained(TypedDict):
    """A trained sweep configuration."""

    config: str
    architecture: str
    d_sae: int
    sparsity: Sparsity
    skipped: Literal[False]
    hyperparameters: Hyperparameters  # those the architecture reads, and d_in
    metrics: SweepEvaluation
    training: SweepTraining
    stability: StabilitySummary
    recovery: RecoverySummary
    live: LiveSummary
    lengths: list[SweepLength]  # one per sweep.lengths, shortest first


SweepConfigFile = SweepTrained | SweepSkipped
"""``metrics/sweep/<architecture>-d<d_sae>/<config>.json`` (stage ``sweep``)."""


class SweepRowSkipped(TypedDict):
    config: str
    architecture: str
    d_sae: int
    knob: Knob
    level: float
    skipped: Literal[True]
    reason: str


class SweepRowLength(TypedDict):
    """A configuration after at most ``epochs`` epochs (the training-length axis)."""

    epochs: int
    explained_variance: float
    l0: float
    pwmcc: float | None
    ratio: float | None  # trained / isotropic random PWMCC
    live_pwmcc: float | None
    shift_null_live_pwmcc: float | None
    above_shift_null: bool  # reconstructing at this length, live PWMCC's CI above the null's


class SweepRow(TypedDict):
    """One trained configuration in ``metrics/sweep.json`` (``*_ci``: the value's CI)."""

    config: str
    architecture: str
    d_sae: int
    knob: Knob
    level: float
    skipped: Literal[False]
    steps: int  # optimiser steps the batch of seeds ran
    converged: bool | None  # every seed met the convergence criterion; null: fixed schedule
    reconstructs: bool  # explained_variance >= sweep.min_explained_variance
    l0: float
    explained_variance: float
    dead_fraction: float
    pwmcc: float | None
    pwmcc_ci: CI | None
    random_pwmcc: float | None
    untrained_pwmcc: float | None
    ratio: float | None  # trained / isotropic random PWMCC
    ratio_ci: CI | None
    ratio_untrained: float | None
    ratio_untrained_ci: CI | None
    hungarian_mcc: float | None  # null above sweep.hungarian_max_d_sae
    shared_fraction: float | None
    coverage: float | None
    pure_latent_fraction: float | None
    decoder_alignment: float | None
    random_decoder_alignment: float | None
    stable: bool  # reconstructs, and both ratios' CIs above sweep.stable_ratio
    subspace_random_pwmcc: NotRequired[float | None]  # with the data-subspace baseline
    ratio_subspace: NotRequired[float | None]
    ratio_subspace_ci: NotRequired[CI | None]
    above_subspace: NotRequired[bool]
    lr: float | None
    epochs_max: int | None  # the most epochs a seed ran
    live_pwmcc: NotRequired[float]  # live latents only (husai.analysis.live_summary)
    live_pwmcc_ci: NotRequired[CI | None]
    shift_null_live_pwmcc: NotRequired[float | None]
    shift_null_live_pwmcc_ci: NotRequired[CI | None]
    subspace_live_pwmcc: NotRequired[float | None]
    live_excess: NotRequired[float | None]  # live PWMCC - shift null
    above_shift_null: NotRequired[bool]  # reconstructs, and its CI above the null's
    n_live: NotRequired[float]  # mean over seeds
    lengths: NotRequired[list[SweepRowLength]]  # one per sweep.lengths


class BestBySize(TypedDict):
    """The configuration of the highest ratio at one dictionary size (null: none)."""

    best_config: str | None
    best_ratio: float | None
    best_ratio_ci: CI | None
    best_pwmcc: float | None
    random_pwmcc: float | None
    n_configs: int
    n_stable: int
    n_not_reconstructing: int


class MatchedArchitecture(TypedDict):
    config: str
    l0: float
    ratio: float
    pwmcc: float | None
    explained_variance: float
    ratio_ci: CI | None


class MatchedL0(TypedDict):
    d_sae: int
    target_l0: float
    best_architecture: str
    architectures: dict[str, MatchedArchitecture]  # "<architecture>"


class ArchitectureWins(TypedDict):
    n_comparisons: int
    wins: int
    mean_ratio: float


class Goldilocks(TypedDict):
    zone: bool
    peak_d_sae: int
    stable_d_sae: list[int]
    answer: str


class LiveBySize(TypedDict):
    n_configs: int  # reconstructing
    n_above_shift_null: int
    best_config: str | None  # of the largest live PWMCC - shift null
    best_excess: float | None


class GoldilocksLive(TypedDict):
    zone: bool
    sizes_above: list[int]
    by_d_sae: dict[str, LiveBySize]  # "<d_sae>"
    answer: str


class SweepByLength(TypedDict):
    epochs: int | None  # null: at convergence
    n_configs: int
    n_above_shift_null: int
    explained_variance: float | None
    pwmcc: float | None
    live_pwmcc: float | None
    shift_null_live_pwmcc: float | None


class SweepByLr(TypedDict):
    n_configs: int
    n_above_shift_null: int
    live_pwmcc: float | None
    shift_null_live_pwmcc: float | None
    min_epochs: int | None
    max_epochs: int | None


class SweepMetrics(TypedDict):
    """``metrics/sweep.json`` (stage ``sweep_summary``)."""

    n_configs: int
    n_saes: int
    n_skipped: int
    n_not_reconstructing: int  # trained configurations below sweep.min_explained_variance
    n_not_converged: int  # trained under the convergence criterion without meeting it
    min_explained_variance: float
    seeds: list[int]
    epochs: int
    rows: list[SweepRow | SweepRowSkipped]
    best_ratio: list[SweepRow]  # up to 5, highest ratio first
    by_d_sae: dict[str, BestBySize]  # "<d_sae>"
    matched_l0: list[MatchedL0]
    architectures_at_matched_l0: dict[str, ArchitectureWins]  # "<architecture>"
    goldilocks: Goldilocks
    lr: list[float]  # sweep.lr
    lengths: list[int]  # sweep.lengths
    n_above_shift_null: int
    goldilocks_live: GoldilocksLive
    by_length: list[SweepByLength]  # sweep.lengths, then convergence
    by_lr: dict[str, SweepByLr]  # "<lr>"


# ----------------------------------------------------------------------------- dynamics


class Settle(TypedDict):
    """``husai.dynamics.settle_summary``: the distribution of settle steps."""

    n_latents: int
    median: int | None
    quantiles: dict[str, int | None]  # "<q>" -> step
    mean_log2_step: float | None
    fraction_settled_by_step: dict[str, float | None]  # "<step>" -> share


class SettleGroups(TypedDict):
    all: Settle
    live: Settle
    shared: Settle
    not_shared_live: Settle


class SettlePerPair(TypedDict):
    all: Settle
    live: Settle
    shared: Settle


class DynamicsReference(TypedDict):
    isotropic: dict[str, Stat]  # "<metric>" of isotropic dictionaries of the same shape
    subspace_random: dict[str, float]  # "<r>" -> r / d_in


class DynamicsCheckpoint(TypedDict):
    """One checkpoint (step 0: the untrained baseline)."""

    step: int
    stability: dict[str, Stat]  # "<metric>": pwmcc, hungarian_mcc, shared_fraction, ...
    ratio_to_isotropic: dict[str, float | None]  # "<metric>"
    explained_variance: Stat
    l0: Stat
    frac_alive: Stat
    cos_to_final: Stat
    settled_fraction: float
    match_agreement_live: float | None


class DynamicsConfig(TypedDict):
    """``husai.dynamics.train_dynamics`` of one configuration."""

    architecture: str
    hyperparameters: Hyperparameters
    seeds: list[int]
    d_sae: int
    d_in: int
    total_steps: int
    checkpoint_steps: list[int]
    random: DynamicsReference
    checkpoints: list[DynamicsCheckpoint]  # in step order
    settle: SettleGroups
    settle_per_pair: SettlePerPair
    final_live: float
    final_shared_with_majority: float


class DynamicsMetrics(TypedDict):
    """``metrics/dynamics.json`` (stage ``dynamics``)."""

    threshold: float
    configs: dict[str, DynamicsConfig]


# ----------------------------------------------------------------------------- geometry


class Gram(TypedDict):
    """``husai.geometry.gram_summary`` of one dictionary."""

    effective_rank: float
    participation_ratio: float
    numerical_rank: int
    top_eigenvalue: float
    self_max_cos: float


class GramStats(TypedDict):
    """:class:`Gram` over the seeds (``husai.geometry.GRAM_KEYS``)."""

    effective_rank: Stat
    participation_ratio: Stat
    numerical_rank: Stat
    top_eigenvalue: Stat
    self_max_cos: Stat


class GeometryGram(TypedDict):
    summary: GramStats
    seed_distance: Stat
    distance_to_isotropic: Stat
    distance_to_data_sample: Stat
    isotropic: Gram
    isotropic_pair_distance: float
    data_sample: Gram
    data_sample_pair_distance: float


class GeometrySubspace(TypedDict):
    """Top-r decoder subspaces, keyed by rank ``"<r>"``."""

    overlap: dict[str, Stat]
    random_expectation: dict[str, float]
    isotropic_overlap: dict[str, float]
    data_sample_overlap: dict[str, float]
    activation_pca_overlap: dict[str, Stat]


class GroupMeasures(TypedDict):
    """``husai.geometry.GROUP_METRICS`` over seed pairs."""

    group_overlap: Stat
    atom_in_span: Stat
    atom_match: Stat
    null_overlap: Stat


class GroupAtFrequency(GroupMeasures):
    rank: float | None
    random_overlap: float | None


class GroupsAll(GroupMeasures):
    random_overlap: float | None


class GroupsDataSample(TypedDict):
    group_overlap: float | None
    atom_in_span: float | None
    atom_match: float | None
    null_overlap: float | None


class GeometryGroups(TypedDict):
    fraction_grouped: Stat
    sizes: dict[str, Stat]  # "<k>"
    per_frequency: dict[str, GroupAtFrequency]  # "<k>"
    all: GroupsAll
    data_sample: GroupsDataSample


class GeometryConfig(TypedDict):
    """``husai.geometry.config_geometry(...).summary`` of one configuration."""

    architecture: str
    seeds: list[int]
    d_sae: int
    live_only: bool
    n_live: Stat
    n_atoms_analysed: list[int]
    n_reference_atoms: int
    d_in: int
    pwmcc: Stat
    gram: GeometryGram
    subspace: GeometrySubspace
    groups: GeometryGroups


class ActivationSummary(TypedDict):
    n: int
    d_in: int
    effective_rank: float
    participation_ratio: float
    dims_for_variance: dict[str, int]  # "<share>" -> dimensions
    variance_share_top: list[float]


class GroundTruthSummary(TypedDict):
    key_frequencies: list[int]
    subspace_dims: dict[str, int]  # "<k>"
    variance_share_in_span: float
    group_min_share: float


class GeometryMetrics(TypedDict):
    """``metrics/geometry.json`` (stage ``geometry``)."""

    activations: ActivationSummary
    ground_truth: GroundTruthSummary
    configs: dict[str, GeometryConfig]


# ----------------------------------------------------------------------------- predictors


class AucStat(Stat):
    """A :class:`Stat` of the per-seed AUCs, and the AUC of all seeds' latents pooled."""

    pooled: float | None


class PredictorSeed(TypedDict):
    n_live: int
    n_shared: int
    auc: dict[str, float | None]  # "<predictor>"


class ClassMeans(TypedDict):
    shared: float | None
    not_shared: float | None


class DecileBin(TypedDict):
    low: float
    high: float
    n: int
    shared_rate: float


class PredictorConfig(TypedDict):
    """``husai.predictors.predictor_summary`` of one configuration."""

    architecture: str
    seeds: list[int]
    d_sae: int
    min_other_seeds: int
    n_latents: int
    n_live: int
    n_shared: int
    shared_count_histogram: dict[str, int]  # "<other seeds shared with>"
    per_seed: dict[str, PredictorSeed]  # "<seed>"
    auc: dict[str, AucStat]  # "<predictor>"
    n_shared_with_any: int
    auc_shared_with_any: dict[str, float | None]
    means: dict[str, ClassMeans]
    shared_rate_by_decile: dict[str, list[DecileBin]]


class SharingRule(TypedDict):
    threshold: float
    shared_with: Literal["majority", "any", "all"]
    absolute: bool


class PredictorsMetrics(TypedDict):
    """``metrics/predictors.json`` (stage ``predictors``)."""

    rule: SharingRule
    configs: dict[str, PredictorConfig]


# ----------------------------------------------------------------------------- the files

FILES: dict[str, Any] = {
    "metrics/transformer.json": TransformerMetrics,
    "metrics/fourier.json": FourierMetrics,
    "metrics/saes/modular.json": SaesMetrics,
    "metrics/stability/modular.json": StabilityMetrics,
    "metrics/recovery.json": RecoveryMetrics,
    "metrics/sweep.json": SweepMetrics,
    "metrics/dynamics.json": DynamicsMetrics,
    "metrics/geometry.json": GeometryMetrics,
    "metrics/predictors.json": PredictorsMetrics,
    "metrics/identifiability.json": IdentifiabilityMetrics,
}
"""The record of each metric file, by its path from the repository root."""

SWEEP_CONFIG = re.compile(r"metrics/sweep/[^/]+/[^/]+\.json")


PER_DOMAIN: dict[re.Pattern[str], Any] = {
    re.compile(r"metrics/saes/[A-Za-z0-9_-]+\.json"): SaesMetrics,
    re.compile(r"metrics/stability/[A-Za-z0-9_-]+\.json"): StabilityMetrics,
    re.compile(r"metrics/identifiability/[A-Za-z0-9_-]+\.json"): IdentifiabilityRow,
}
"""The per-domain metric files of stages ``saes@<domain>`` and ``stability@<domain>``."""


def record_for(path: str) -> Any:
    """The record of the metric file at ``path`` (relative to the repository root,
    ``/``-separated; a sweep configuration file matches :data:`SWEEP_CONFIG`)."""
    if path in FILES:
        return FILES[path]
    if SWEEP_CONFIG.fullmatch(path):
        return SweepConfigFile
    for pattern, record in PER_DOMAIN.items():
        if pattern.fullmatch(path):
            return record
    raise KeyError(f"{path} is not a metric file of the contract (husai/records.py)")


# ----------------------------------------------------------------------------- validation


class RecordError(ValueError):
    """A JSON document that does not follow its record; the message names the json path."""


JsonPath = tuple[str | int, ...]


def _where(path: JsonPath) -> str:
    return "/".join(str(k) for k in path) if path else "(top level)"


def _name(tp: Any) -> str:
    """A short readable name of a type expression, for messages."""
    if tp is type(None):
        return "null"
    if tp is float:
        return "number"
    if isinstance(tp, type):
        return tp.__name__
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return " | ".join(_name(a) for a in args)
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin is list:
        return f"list of {_name(args[0])}"
    if origin is tuple:
        return f"[{', '.join(_name(a) for a in args)}]"
    if origin in (dict, Mapping):
        return f"mapping of {_name(args[1])}"
    return str(tp)


def _shown(value: Any) -> str:
    kind = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), "a number")
    text = json.dumps(value)
    return (
        f"{kind} ({text[:40]}{'...' if len(text) > 40 else ''})"
        if kind not in ("an object", "a list")
        else kind
    )


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(record: type) -> dict[str, Any]:
    if record not in _HINTS:
        _HINTS[record] = typing.get_type_hints(record)
    return _HINTS[record]


def _check(value: Any, tp: Any, path: JsonPath) -> None:
    """Raise :class:`RecordError` (message: json path, problem) unless ``value`` is ``tp``."""
    if tp is Any:
        return
    if typing.is_typeddict(tp):
        _check_record(value, tp, path)
        return
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        _check_union(value, args, path)
        return
    if origin is Literal:
        if not any(type(value) is type(a) and value == a for a in args):
            raise RecordError(f"{_where(path)}: expected {_name(tp)}, got {_shown(value)}")
        return
    if origin is list:
        if not isinstance(value, list):
            raise RecordError(f"{_where(path)}: expected a {_name(tp)}, got {_shown(value)}")
        for i, item in enumerate(value):
            _check(item, args[0], (*path, i))
        return
    if origin is tuple:
        if not isinstance(value, list) or len(value) != len(args):
            raise RecordError(
                f"{_where(path)}: expected {_name(tp)} (a list of {len(args)}), got {_shown(value)}"
            )
        for i, (item, a) in enumerate(zip(value, args, strict=True)):
            _check(item, a, (*path, i))
        return
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise RecordError(f"{_where(path)}: expected a {_name(tp)}, got {_shown(value)}")
        for key, item in value.items():
            _check(item, args[1], (*path, key))
        return
    ok = {
        type(None): value is None,
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(tp)
    if ok is None:
        raise TypeError(f"husai.records cannot check the type {tp!r}")
    if not ok:
        raise RecordError(f"{_where(path)}: expected {_name(tp)}, got {_shown(value)}")


def _check_record(value: Any, record: Any, path: JsonPath) -> None:
    if not isinstance(value, dict):
        raise RecordError(
            f"{_where(path)}: expected a {record.__name__} object, got {_shown(value)}"
        )
    hints = _hints(record)
    for key in hints:
        if key in record.__required_keys__ and key not in value:
            raise RecordError(
                f"{_where((*path, key))}: missing (a {record.__name__} has {', '.join(hints)})"
            )
    for key in value:
        if key not in hints:
            raise RecordError(
                f"{_where((*path, key))}: unexpected key (a {record.__name__} "
                f"has {', '.join(hints)})"
            )
    for key, item in value.items():
        _check(item, hints[key], (*path, key))


def _discriminated(value: Any, record: Any) -> bool:
    """Whether the ``Literal`` keys of ``record`` (e.g. ``skipped``) match ``value``."""
    if not isinstance(value, dict):
        return False
    for key, tp in _hints(record).items():
        if typing.get_origin(tp) is Literal and key in value:
            if not any(
                type(value[key]) is type(a) and value[key] == a for a in typing.get_args(tp)
            ):
                return False
    return True


def _check_union(value: Any, args: tuple[Any, ...], path: JsonPath) -> None:
    if value is None and type(None) in args:
        return
    options = [a for a in args if a is not type(None)]
    errors = []
    for a in options:
        try:
            _check(value, a, path)
            return
        except RecordError as err:
            errors.append((a, err))
    # a record picked by its literal keys explains itself better than the union does
    picked = [err for a, err in errors if typing.is_typeddict(a) and _discriminated(value, a)]
    if len(picked) == 1:
        raise picked[0]
    if len(options) == 1 and isinstance(value, dict | list):
        raise errors[0][1]  # e.g. a Stat or null: say what is wrong inside the Stat
    raise RecordError(
        f"{_where(path)}: expected {' | '.join(_name(a) for a in args)}, got {_shown(value)}"
    )


def validate(obj: Any, record: Any, where: str = "") -> None:
    """Check the parsed JSON ``obj`` against ``record``; :class:`RecordError` naming
    ``where`` (the file) and the json path of the first missing key, unexpected key or
    value of the wrong type."""
    try:
        _check(obj, record, ())
    except RecordError as err:
        raise RecordError(f"{where}: {err}" if where else str(err)) from None


def validate_json(data: bytes | str, record: Any, where: str = "") -> None:
    """:func:`validate` of the JSON text ``data`` (what a stage is about to write)."""
    validate(json.loads(data), record, where)


# ----------------------------------------------------------------------------- compare


class CompareSAE(TypedDict):
    name: str  # as given on the command line (a folder path)
    d_sae: int
    d_in: int
    n_live: NotRequired[int]  # with activations: latents that fire on some row
    n_dead: NotRequired[int]
    distinct_live: NotRequired[int]  # live atoms with |cos| < 0.95 to every one kept before


class CompareOptions(TypedDict):
    threshold: float  # shared latent: both matched cosines >= this
    ranks: list[int]  # subspace-overlap ranks (those above min(d_sae_a, d_sae_b, d_in) left out)
    cosine: Literal["absolute", "signed"]  # |cos| (this project) or cos (Paulo & Belrose)
    seed: int  # the isotropic reference's seeds: seed + SAE position
    n_boot: int
    boot_seed: int
    live_cosine: NotRequired[Literal["absolute"]]  # the live numbers always use |cos|


class CompareMatch(TypedDict):
    """One pair of the decoder matching: latent a of SAE A <-> latent b of SAE B."""

    a: int
    b: int
    decoder_cos: float
    encoder_cos: float  # of the same two latents' encoder atoms
    shared: bool  # Paulo & Belrose: the encoder matching pairs them too, both >= threshold


class CompareIsotropic(TypedDict):
    pwmcc: float
    pwmcc_ab: float
    pwmcc_ba: float
    hungarian_mcc: float | None
    shared_fraction: float | None
    matching_gap: dict[str, float] | None  # as the pair's: null where the matching is exact


class ComparePair(TypedDict):
    a: str
    b: str
    pwmcc: float
    pwmcc_ab: float  # mean over A's atoms of the best cosine with B's
    pwmcc_ba: float
    hungarian_mcc: float | None
    shared_fraction: float | None
    subspace_overlap: dict[str, float]  # "<r>"
    subspace_random: dict[str, float]  # "<r>": its expectation for random subspaces
    matching_method: Literal["dense", "sparse"]  # SciPy's exact solver, or among candidates
    matching_gap: dict[str, float] | None  # sparse: "decoder"/"encoder" bound on the MCC gap
    matching: NotRequired[list[CompareMatch]]
    isotropic: CompareIsotropic  # random unit atoms of the same shapes


class CompareSummaryEntry(TypedDict):
    trained: Stat
    isotropic: Stat


class CompareProvenance(TypedDict):
    files: dict[str, str]  # "<sae folder>/<file>" (and the activations file) -> sha256
    versions: dict[str, str]  # husai, torch, sae_lens, scipy, numpy
    command: list[str]


class CompareResult(TypedDict):
    """``husai compare --json OUT`` (:func:`husai.compare.compare` plus provenance)."""

    schema_version: int  # husai.compare.COMPARE_SCHEMA_VERSION
    saes: list[CompareSAE]
    options: CompareOptions
    pairs: list[ComparePair]  # (0, 1), (0, 2), ..., (1, 2), ...
    summary: dict[str, CompareSummaryEntry] | None  # "<metric>"; with three SAEs or more
    live: NotRequired[LiveStability]  # with --activations: live latents only
    provenance: CompareProvenance
