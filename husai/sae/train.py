"""The training engine: every seed of one configuration trained at once.

Parameters carry a leading seed dimension S and every kernel runs once for all
seeds (batched matmuls, flat sparse kernels). The loss is the sum of the per-seed
losses, so each seed's gradient is its own; Adam is elementwise, so one Adam over
the stacked parameters is S independent Adams; gradient clipping is per seed (SAELens
clips each SAE's total gradient norm at 1.0). Nothing couples the seeds.

Per seed and per epoch the rows of the activation dataset are visited in a random
order drawn from that seed's own generator (:func:`husai.sae.base.seed_generator`),
in batches of ``batch_size`` (the last batch of an epoch holds the remainder), so an
epoch is ``ceil(N / batch_size)`` steps.

Training to convergence (``convergence_tol`` > 0, ``convergence_window`` = w): ``epochs``
is then the maximum. After epoch e (counting from 1) with e > w, a seed has converged
when its epoch-mean training loss improved by less than ``convergence_tol`` relative over
the last w epochs, ``(loss[e - w] - loss[e]) / loss[e - w] < convergence_tol`` (a loss
that rose counts as converged), provided epoch e - w started after every warm-up the
architecture reads (``lr_warm_up_steps``, ``l1_warm_up_steps``, ``l0_warm_up_steps``),
whose rising penalty would otherwise look like a plateau. A converged seed is frozen: the
SAE returned for it (and every checkpoint after that epoch) is its state at the end of
epoch e, and it leaves the batch: the others go on without it (its parameters, optimiser
state and data order are dropped), until every seed has converged or ``epochs`` are
done. So each seed's result, like its whole run, is what training it alone would give;
nothing couples the seeds, the stopping rule included. (Stopping the whole batch when the
last seed converges would be simpler but would make a seed's result depend on which
seeds it shares a batch with.)
``convergence_tol = 0`` trains exactly ``epochs`` epochs, bit for bit as before the
criterion existed.

That is the ``loss`` criterion (``convergence = "loss"``). A loss that can go on
falling towards 0 (data a dictionary can reconstruct almost exactly, as the modular
model's 113 points) may never meet it in relative terms while the reconstruction no
longer changes; ``convergence = "explained_variance"`` asks instead that the epoch-mean
training explained variance (``1 - mse / variance``, both in the training units) rose by
less than ``convergence_tol`` (absolute) over the last w epochs. The same warm-up rule,
freezing and per-seed independence apply.

Whether the atoms have settled as well is measured, not required (on data with a
continuous symmetry they may drift for ever at no cost in loss): with
``convergence_tol > 0`` the history's ``atom_drift`` holds, per seed, the mean over the
latents that fired in its last epoch of ``1 - cos`` between each decoder atom at the
seed's returned state and its own state w epochs earlier (None when the seed ran no more
than w epochs)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from husai.errors import DivergedError, HusaiError
from husai.sae import registry
from husai.sae.base import BatchedSAE, seed_generator
from husai.sae.config import SAEConfig
from husai.sae.metrics import evaluate

DIVERGED_EXPLAINED_VARIANCE = -1.0
"""Training that ends with explained variance below this (a reconstruction error over
twice the data's variance about its mean) has diverged: it is an error, not a result.
SAEs that reconstruct poorly but above it (e.g. EV 0.05) are results, to be reported as
such. Defined in docs/SCIENCE.md section 6."""

CheckpointFn = Callable[[int, BatchedSAE], None]
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class TrainHistory:
    """Per-epoch, per-seed training curves, each [epochs, S] (means over the epoch's steps);
    ``dead`` counts latents that did not fire on any input during the epoch;
    ``final_metrics`` are :func:`husai.sae.metrics.evaluate` of the returned SAEs on the
    training activations, one dict per seed.

    ``epochs`` and ``steps`` are what the batch ran (``steps = epochs * steps_per_epoch``);
    ``seed_epochs[i]`` is the epoch whose end state seed i returned (``epochs`` unless it
    converged earlier), and its curve rows after that epoch are NaN (discarded training).
    ``converged`` is None for a fixed schedule (``convergence_tol = 0``), else one bool
    per seed: whether it met the criterion within ``epochs``; ``atom_drift`` likewise
    (module docstring)."""

    loss: torch.Tensor
    mse: torch.Tensor
    l0: torch.Tensor
    dead: torch.Tensor
    scale: float
    steps: int
    final_metrics: list[dict[str, float]]
    epochs: int
    steps_per_epoch: int
    seed_epochs: tuple[int, ...]
    converged: tuple[bool, ...] | None
    atom_drift: tuple[float | None, ...] | None = None

    @property
    def seed_steps(self) -> tuple[int, ...]:
        """The optimiser steps behind each seed's returned SAE."""
        return tuple(e * self.steps_per_epoch for e in self.seed_epochs)

    def last(self, curve: str) -> torch.Tensor:
        """Each seed's value [S] of ``curve`` (loss, mse, l0, dead) in its last epoch."""
        values = getattr(self, curve)
        rows = torch.tensor(self.seed_epochs) - 1
        return values[rows, torch.arange(values.shape[1])]


def ev_converged(ev: torch.Tensor, epoch: int, tol: float, window: int) -> torch.Tensor:
    """The ``explained_variance`` criterion (module docstring) after 0-based epoch
    ``epoch`` of the epoch-mean explained variances ``ev`` [epochs, S]: ``[S]`` bool."""
    if epoch < window:
        return torch.zeros(ev.shape[1], dtype=torch.bool)
    return (ev[epoch].double() - ev[epoch - window].double()) < tol


def atom_drift(
    w_dec: torch.Tensor, w_dec_before: torch.Tensor, fired: torch.Tensor
) -> torch.Tensor:
    """Per seed, the mean over the latents in ``fired`` [S, d_sae] of ``1 - cos`` between
    each decoder atom in ``w_dec`` [S, d_sae, d_in] and in ``w_dec_before`` (NaN for a seed
    with no such latent)."""
    now = torch.nn.functional.normalize(w_dec.double(), dim=-1)
    before = torch.nn.functional.normalize(w_dec_before.double(), dim=-1)
    drift = 1.0 - (now * before).sum(-1)
    n = fired.sum(1)
    return torch.where(n > 0, (drift * fired).sum(1) / n.clamp_min(1), torch.nan)


def converged_seeds(loss: torch.Tensor, epoch: int, tol: float, window: int) -> torch.Tensor:
    """Which seeds meet the convergence criterion (module docstring) after 0-based epoch
    ``epoch`` of the epoch-mean losses ``loss`` [epochs, S]: ``[S]`` bool."""
    if epoch < window:
        return torch.zeros(loss.shape[1], dtype=torch.bool)
    before, now = loss[epoch - window].double(), loss[epoch].double()
    gain = torch.where(before > 0, (before - now) / before, torch.zeros_like(before))
    return gain < tol


def activation_scale(x: torch.Tensor, config: SAEConfig) -> float:
    """The factor training multiplies the activations by (1.0 unless normalising)."""
    if config.normalize_activations == "none":
        return 1.0
    mean_norm = float(x.to(torch.float64).norm(dim=-1).mean())
    if not math.isfinite(mean_norm):
        bad = int((~torch.isfinite(x)).any(dim=-1).sum())
        raise HusaiError(f"the activations hold NaN or inf values ({bad} of {x.shape[0]} rows)")
    if not mean_norm > 0:
        raise HusaiError("cannot normalise activations whose mean norm is 0")
    return math.sqrt(config.d_in) / mean_norm


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    return math.ceil(n_rows / batch_size)


class Adam:
    """``torch.optim.Adam(fused=True)`` without its per-step Python bookkeeping.

    Calls the same fused kernel (``torch._fused_adam_``, elementwise, so one Adam over
    stacked seeds equals S separate ones) with the gradients passed in, bit for bit
    what ``torch.optim.Adam(params, lr, betas, eps=1e-8, fused=True)`` computes (a test
    checks this); the per-step learning rate is an argument.
    """

    def __init__(
        self, params: list[torch.Tensor], betas: tuple[float, float], eps: float = 1e-8
    ) -> None:
        self.params = params
        self.exp_avgs = [torch.zeros_like(p) for p in params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in params]
        self.steps = [torch.zeros((), dtype=torch.float32) for _ in params]
        self.betas = betas
        self.eps = eps

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor], lr: float) -> None:
        # The fused kernel walks parameter and gradient storage in memory order, so a
        # gradient laid out differently (autograd returns the gradient of a transposed use
        # transposed) would update the wrong elements: make every gradient contiguous.
        grads = [g if g.is_contiguous() else g.contiguous() for g in grads]
        torch._foreach_add_(self.steps, 1)
        torch._fused_adam_(
            self.params,
            grads,
            self.exp_avgs,
            self.exp_avg_sqs,
            [],
            self.steps,
            amsgrad=False,
            lr=lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=0.0,
            eps=self.eps,
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )


def _clip_per_seed(grads: list[torch.Tensor], max_norm: float) -> None:
    """torch's clip_grad_norm_ applied to each seed's gradients separately.

    Norms are taken slice by slice (one seed's tensor at a time), so a seed's norm,
    and with it its whole training run, does not depend on how many seeds share the
    batch: a reduction over a stacked [S, ...] tensor may split its work across
    threads differently for different S, which changes the rounding.
    """
    s = grads[0].shape[0]
    norms = torch.stack(torch._foreach_norm([g[i] for i in range(s) for g in grads]))
    totals = torch.linalg.vector_norm(norms.view(s, len(grads)), dim=1)
    coef = (max_norm / (totals + 1e-6)).clamp(max=1.0)
    if bool((coef < 1.0).any()):  # multiplying by 1.0 changes nothing: skip the pass
        for g in grads:
            g.mul_(coef.view(s, *([1] * (g.ndim - 1))))


def describe(config: SAEConfig) -> str:
    """A short name of a configuration for messages, e.g. ``topk SAE (d_sae 1024, lr 0.0003)``."""
    return f"{config.architecture} SAE (d_sae {config.d_sae}, lr {config.lr:g})"


def check_finite_loss(
    loss: torch.Tensor, seeds: tuple[int, ...], step: int, total: int, what: str
) -> None:
    """Raise :class:`DivergedError` for the first seed whose loss [S] is NaN or inf."""
    ok = torch.isfinite(loss)
    if not bool(ok.all()):
        i = int((~ok).nonzero()[0, 0])
        raise DivergedError(what, seeds[i], step, total, f"loss is {float(loss[i])}")


def check_trained(
    sae: BatchedSAE, metrics: list[dict[str, float]], step: int, total: int, what: str
) -> None:
    """Raise :class:`DivergedError` for the first seed whose weights or metrics are not
    finite, or whose explained variance is below :data:`DIVERGED_EXPLAINED_VARIANCE`."""
    for i, seed in enumerate(sae.seeds):
        for name, tensor in sae.params.items():
            if not bool(torch.isfinite(tensor[i]).all()):
                raise DivergedError(what, seed, step, total, f"{name} holds NaN or inf")
        for name, value in metrics[i].items():
            if not math.isfinite(value):
                raise DivergedError(what, seed, step, total, f"{name} is {value}")
        ev = metrics[i]["explained_variance"]
        if ev < DIVERGED_EXPLAINED_VARIANCE:
            raise DivergedError(
                what,
                seed,
                step,
                total,
                f"explained variance {ev:.4g} is below the floor {DIVERGED_EXPLAINED_VARIANCE:g}",
            )


def train_saes(
    config: SAEConfig,
    x: torch.Tensor,
    seeds: Iterable[int],
    *,
    checkpoint_steps: Iterable[int] = (),
    on_checkpoint: CheckpointFn | None = None,
    on_progress: ProgressFn | None = None,
    name: str | None = None,
) -> tuple[BatchedSAE, TrainHistory]:
    """Train one SAE per seed on activations x [N, d_in]; return them (canonical form) and curves.

    ``on_checkpoint(step, sae)`` receives a canonical copy at each step listed in
    ``checkpoint_steps`` (0 = the initialisation; the last is ``epochs * steps_per_epoch``);
    training to convergence may stop before the later ones, which are then never called
    (``history.steps`` says where it stopped), and a seed that converged appears in
    them frozen at its state at the end of its convergence epoch.
    ``on_progress(step, total)`` is called after every step (``total``: the maximum).

    Diverging training raises :class:`~husai.errors.DivergedError` naming the seed and
    step (``name``, e.g. the params configuration, prefixes the message): a non-finite
    loss at any step, or non-finite weights or metrics, or explained variance below
    :data:`DIVERGED_EXPLAINED_VARIANCE` at the end.
    """
    from husai.sae import architecture

    config.validate()
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise HusaiError("train_saes needs at least one seed")
    if x.ndim != 2 or x.shape[1] != config.d_in:
        raise HusaiError(
            f"activations have shape {tuple(x.shape)} but the SAE config has d_in = {config.d_in}"
        )
    arch = architecture(config.architecture)
    what = describe(config) if name is None else f"configuration {name!r}: {describe(config)}"
    n_rows, d_in = x.shape
    S, B = len(seeds), config.batch_size
    per_epoch = steps_per_epoch(n_rows, B)
    total = per_epoch * config.epochs
    wanted = sorted(set(int(c) for c in checkpoint_steps))
    if wanted and not 0 <= wanted[0] <= wanted[-1] <= total:
        raise HusaiError(f"checkpoint steps must lie in 0..{total}, got {wanted}")
    wanted_set = set(wanted)

    scale = activation_scale(x, config)
    xs = (x.to(torch.float32) * scale if scale != 1.0 else x.to(torch.float32)).contiguous()
    params, buffers = arch.init_params(config, seeds)
    names = list(params)
    adam = Adam([params[n] for n in names], betas=(config.adam_beta1, config.adam_beta2))
    since_fired = torch.zeros(S, config.d_sae, dtype=torch.int64)
    data_gens = [seed_generator(seed, "data") for seed in seeds]

    tol, window = config.convergence_tol, config.convergence_window
    reads = registry.spec(config.architecture).reads()
    warm_ups = ("lr_warm_up_steps", "l1_warm_up_steps", "l0_warm_up_steps")
    warm_up = max(getattr(config, n) for n in warm_ups if n in reads)
    frozen: dict[int, dict[str, torch.Tensor]] = {}  # seed index -> its inference params
    seed_epochs = [config.epochs] * S
    active = list(range(S))  # the seeds still training, in batch order

    def inference() -> dict[str, torch.Tensor]:
        if not frozen:
            return arch.to_inference(params, buffers, config, scale)
        out = arch.to_inference(params, buffers, config, scale) if active else {}
        where = {i: j for j, i in enumerate(active)}
        names = frozen[next(iter(frozen))].keys()
        return {
            n: torch.stack([frozen[i][n] if i in frozen else out[n][where[i]] for i in range(S)])
            for n in names
        }

    def leave(keep: list[int]) -> None:
        """Drop the batch positions not in ``keep`` (converged seeds) from every state."""
        nonlocal since_fired
        index = torch.tensor(keep)
        for n in names:
            params[n] = params[n].index_select(0, index).contiguous()
        for n in list(buffers):
            buffers[n] = buffers[n].index_select(0, index).contiguous()
        adam.params = [params[n] for n in names]
        adam.exp_avgs = [t.index_select(0, index).contiguous() for t in adam.exp_avgs]
        adam.exp_avg_sqs = [t.index_select(0, index).contiguous() for t in adam.exp_avg_sqs]
        since_fired = since_fired.index_select(0, index).contiguous()
        data_gens[:] = [data_gens[j] for j in keep]

    def snapshot(step: int) -> None:
        if on_checkpoint is not None and step in wanted_set:
            on_checkpoint(step, BatchedSAE(config, seeds, inference()))

    curves = {k: torch.zeros(config.epochs, S) for k in ("loss", "mse", "l0", "dead")}
    variance = float((xs.double() - xs.double().mean(0)).pow(2).sum(1).mean())
    decoders: dict[int, dict[int, torch.Tensor]] = {}  # epoch -> seed -> its decoder (tol > 0)
    drifts: list[float | None] = [None] * S
    snapshot(0)
    step = 0
    epochs_run = 0
    for epoch in range(config.epochs):
        order = torch.stack([torch.randperm(n_rows, generator=g) for g in data_gens])
        n_active = len(active)
        batch_seeds = tuple(seeds[i] for i in active)
        fired_epoch = torch.zeros(n_active, config.d_sae, dtype=torch.bool)
        sums = torch.zeros(3, n_active)
        n_steps = 0
        for start in range(0, n_rows, B):
            idx = order[:, start : start + B]
            xb = xs.index_select(0, idx.reshape(-1)).view(n_active, idx.shape[1], d_in)
            dead = since_fired > config.dead_feature_window
            result, grads = arch.step(params, buffers, xb, config, step, dead)
            check_finite_loss(result.loss, batch_seeds, step + 1, total, what)
            since_fired += 1
            since_fired.masked_fill_(result.fired, 0)
            fired_epoch |= result.fired
            grad_list = [grads[n] for n in names]
            if config.max_grad_norm > 0:
                _clip_per_seed(grad_list, config.max_grad_norm)
            lr = config.lr
            if config.lr_warm_up_steps > 0:  # SAELens's linear warm-up: lr * (t + 1) / warm-up
                lr *= min(1.0, (step + 1) / config.lr_warm_up_steps)
            adam.step(grad_list, lr)
            step += 1
            sums += torch.stack([result.loss, result.mse, result.l0])
            n_steps += 1
            snapshot(step)
            if on_progress is not None:
                on_progress(step, total)
        means = sums / n_steps
        cols = torch.tensor(active)
        for row, k in enumerate(("loss", "mse", "l0")):
            curves[k][epoch, cols] = means[row]
        curves["dead"][epoch, cols] = (~fired_epoch).sum(1).to(torch.float32)
        epochs_run = epoch + 1
        if tol > 0:
            # each seed's decoder at the end of this epoch, by seed index (drift per seed:
            # a seed's value does not depend on which others share the batch)
            w_dec = params["W_dec"].detach()
            decoders[epoch] = {i: w_dec[j].clone() for j, i in enumerate(active)}
            decoders.pop(epoch - window - 1, None)
            if epoch >= window:
                for j, i in enumerate(active):
                    drift = atom_drift(
                        decoders[epoch][i].unsqueeze(0),
                        decoders[epoch - window][i].unsqueeze(0),
                        fired_epoch[j].unsqueeze(0),
                    )
                    drifts[i] = None if math.isnan(drift[0]) else float(drift[0])
        if tol > 0 and (epoch - window) * per_epoch >= warm_up:
            if config.convergence == "explained_variance":
                ev = 1.0 - curves["mse"][: epoch + 1].double() / variance
                done = ev_converged(ev, epoch, tol, window)
            else:
                done = converged_seeds(curves["loss"], epoch, tol, window)
            new = [i for i in active if bool(done[i])]
            if new:
                state = arch.to_inference(params, buffers, config, scale)
                for j, i in enumerate(active):
                    if i in new:
                        frozen[i] = {n: t[j].clone() for n, t in state.items()}
                        seed_epochs[i] = epochs_run
                keep = [j for j, i in enumerate(active) if i not in new]
                active = [i for i in active if i not in new]
                if not active:
                    break
                leave(keep)

    steps_run = epochs_run * per_epoch
    curves = {k: v[:epochs_run].clone() for k, v in curves.items()}
    for i, e in enumerate(seed_epochs):
        for v in curves.values():
            v[e:, i] = math.nan
    final = BatchedSAE(config, seeds, inference())
    metrics = evaluate(final, x)
    check_trained(final, metrics, steps_run, total, what)
    history = TrainHistory(
        scale=scale,
        steps=steps_run,
        final_metrics=metrics,
        epochs=epochs_run,
        steps_per_epoch=per_epoch,
        seed_epochs=tuple(seed_epochs),
        converged=None if tol == 0 else tuple(i in frozen for i in range(S)),
        atom_drift=None if tol == 0 else tuple(drifts),
        **curves,
    )
    return final, history
