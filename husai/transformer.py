"""The ground-truth model: a 1-layer TransformerLens ``HookedTransformer`` grokking
modular addition (Nanda et al. 2023; SCIENCE.md section 1).

Training is full batch AdamW with the loss in float64 at the last (``=``)
position. In a 1-layer model only the last position's query, MLP and unembedding
feed that loss, and the first two positions' keys and values depend on a single
token each. :func:`last_position_logits` exploits this exactly: it builds per-token
tables for the attention and runs the MLP and unembedding on the last position
only. It uses the ``HookedTransformer``'s own parameters, so the trained model is
a real ``HookedTransformer`` whose ``model(tokens)[:, -1]`` gives the same logits
(checked in the tests to float32 round-off).

Once the training loss is tiny (after memorisation, most of the run) the float64 loss's
gradient, cast back to the float32 logits, is full of subnormal numbers (below
float32's smallest normal, about 1.2e-38), and CPU matrix multiplications that meet
them take a slow path. :class:`FlushSubnormalGrad` sets those gradient entries to zero
on their way into the model: an explicit, thread-independent flush-to-zero of one
tensor's gradient (a hardware flush-to-zero mode is a per-thread CPU flag that torch's
worker threads may or may not have, so results would depend on when they started). It
changes the training arithmetic by less than float32 can represent beside the other
entries; the speed it buys is in benchmarks/RESULTS-defaults.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import torch
import torch.nn.functional as F
from transformer_lens import HookedTransformer, HookedTransformerConfig

from husai.task import N_CTX, ModularAddition


def model_config(
    p: int,
    *,
    d_model: int = 128,
    n_heads: int = 4,
    d_head: int = 32,
    d_mlp: int = 512,
    seed: int = 999,
    device: str = "cpu",
) -> HookedTransformerConfig:
    """The Nanda et al. configuration: no LayerNorm, ReLU MLP, learned positions, untied unembed."""
    return HookedTransformerConfig(
        n_layers=1,
        n_heads=n_heads,
        d_model=d_model,
        d_head=d_head,
        d_mlp=d_mlp,
        act_fn="relu",
        normalization_type=None,
        d_vocab=p + 1,
        d_vocab_out=p,
        n_ctx=N_CTX,
        seed=seed,
        device=device,
    )


def build_model(cfg: HookedTransformerConfig) -> HookedTransformer:
    """A freshly initialised model; its weights depend only on ``cfg.seed``."""
    torch.manual_seed(cfg.seed)  # TransformerLens seeds globally too; be explicit
    return HookedTransformer(cfg)


@cache
def hook_names() -> frozenset[str]:
    """Hook points of the 1-layer architecture that hold one vector per token position.

    Found by running a tiny model of the same architecture with a full cache and
    keeping the hooks whose activation is ``[batch, position, ...]`` (attention
    scores and patterns are ``[batch, head, q, k]`` and are left out).
    """
    tiny = HookedTransformerConfig(
        n_layers=1,
        n_heads=1,
        d_model=4,
        d_head=4,
        d_mlp=4,
        act_fn="relu",
        normalization_type=None,
        d_vocab=4,
        d_vocab_out=3,
        n_ctx=N_CTX,
        device="cpu",
    )
    with torch.no_grad():
        _, cache_ = HookedTransformer(tiny).run_with_cache(torch.tensor([[0, 1, 3]]))
    return frozenset(
        name
        for name, act in cache_.items()
        if act.shape[1] == N_CTX and not name.endswith(("hook_attn_scores", "hook_pattern"))
    )


def last_position_logits(model: HookedTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """Exactly ``model(tokens)[:, -1]`` for ``[a, b, =]`` inputs, computed cheaply.

    Position 2's query is the same for every example, and positions 0 and 1 each
    see one token, so attention scores and value-output vectors are per-token
    tables of size ``[p, heads]`` and ``[p, heads, d_model]``. Only the MLP and
    unembedding run per example, and only at the last position.
    """
    attn, mlp = model.blocks[0].attn, model.blocks[0].mlp
    w_e, w_pos = model.embed.W_E, model.pos_embed.W_pos
    a, b, eq = tokens[:, 0], tokens[:, 1], tokens[0, 2]
    resid = [w_e + w_pos[0], w_e + w_pos[1], (w_e[eq] + w_pos[2]).unsqueeze(0)]  # per position

    q = torch.einsum("d,hde->he", resid[2][0], attn.W_Q) + attn.b_Q  # [H, dh]
    scale = attn.attn_scale
    scores, vo = [], []
    for r in resid:
        k = torch.einsum("td,hde->the", r, attn.W_K) + attn.b_K  # [T, H, dh]
        v = torch.einsum("td,hde->the", r, attn.W_V) + attn.b_V
        scores.append((k * q).sum(-1) / scale)  # [T, H]
        vo.append(torch.einsum("the,hed->thd", v, attn.W_O))  # [T, H, d]
    pattern = torch.stack(
        [scores[0][a], scores[1][b], scores[2].expand(len(a), -1)], dim=-1
    ).softmax(dim=-1)  # [N, H, 3]
    attn_out = (
        (pattern[..., 0, None] * vo[0][a]).sum(1)
        + (pattern[..., 1, None] * vo[1][b]).sum(1)
        + pattern[..., 2] @ vo[2][0]
        + attn.b_O
    )
    resid_mid = resid[2] + attn_out
    post = F.relu(resid_mid @ mlp.W_in + mlp.b_in)
    resid_post = resid_mid + post @ mlp.W_out + mlp.b_out
    return resid_post @ model.unembed.W_U + model.unembed.b_U


class FlushSubnormalGrad(torch.autograd.Function):
    """Identity forward; backward zeroes gradient entries of magnitude below the smallest
    normal number of their dtype (module docstring)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.masked_fill(grad.abs() < torch.finfo(grad.dtype).tiny, 0.0)


def flush_subnormal_grad(x: torch.Tensor) -> torch.Tensor:
    """``x``, whose gradient will have its subnormal entries set to zero."""
    return FlushSubnormalGrad.apply(x)


def loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Cross-entropy in float64 (Nanda's convention) and accuracy."""
    logprobs = logits.to(torch.float64).log_softmax(dim=-1)
    loss = -logprobs.gather(1, labels.unsqueeze(1)).mean()
    acc = float((logits.argmax(dim=-1) == labels).to(torch.float64).mean())
    return loss, acc


@dataclass(frozen=True)
class TrainConfig:
    """Full-batch AdamW training of the Nanda model (SCIENCE.md section 1)."""

    epochs: int
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_epochs: int = 10
    log_every: int = 10
    train_biases: bool = False
    grok_accuracy: float = 0.99


@dataclass
class TrainRecord:
    """One row of the training curve: the model after ``epoch`` full-batch steps."""

    epoch: int
    train_loss: float
    test_loss: float
    train_accuracy: float
    test_accuracy: float


@dataclass
class TrainResult:
    curve: list[TrainRecord] = field(default_factory=list)
    grokking_epoch: int | None = None
    """Fewest steps after which test accuracy is >= ``grok_accuracy`` (exact: the test
    set is evaluated after every step until this is found)."""


def train(
    model: HookedTransformer,
    task: ModularAddition,
    cfg: TrainConfig,
    on_epoch: Callable[[int, TrainRecord | None], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place with ``cfg.epochs`` full-batch AdamW steps.

    Records follow Nanda et al.'s loop: the metrics of epoch ``e`` are those of
    the model after ``e`` steps (``e = 0`` is the initialisation), so the train
    metrics come from the forward pass of the step itself. The test set is
    evaluated after every step until test accuracy first reaches
    ``grok_accuracy``, then every ``log_every`` steps and after the last one.
    As in Nanda et al., biases stay at zero unless ``train_biases``, and the
    learning rate warms up linearly over ``warmup_epochs`` steps.
    """
    device = model.cfg.device
    train_idx, test_idx = task.train_idx.to(device), task.test_idx.to(device)
    tokens, labels = task.tokens.to(device), task.labels.to(device)
    x_tr, y_tr, x_te, y_te = (
        tokens[train_idx],
        labels[train_idx],
        tokens[test_idx],
        labels[test_idx],
    )

    params = []
    for name, param in model.named_parameters():
        is_bias = name.rsplit(".", 1)[-1].startswith("b_")
        param.requires_grad_(cfg.train_biases or not is_bias)
        if param.requires_grad:
            params.append(param)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=cfg.betas)
    warmup = max(cfg.warmup_epochs, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min((step + 1) / warmup, 1.0))

    result = TrainResult()
    for epoch in range(cfg.epochs + 1):
        last = epoch == cfg.epochs
        with torch.set_grad_enabled(not last):
            logits = last_position_logits(model, x_tr)
            loss, train_acc = loss_and_accuracy(flush_subnormal_grad(logits), y_tr)
        record = None
        due = epoch % cfg.log_every == 0 or last
        if due or result.grokking_epoch is None:
            with torch.no_grad():
                test_loss, test_acc = loss_and_accuracy(last_position_logits(model, x_te), y_te)
            if result.grokking_epoch is None and test_acc >= cfg.grok_accuracy:
                result.grokking_epoch = epoch
                due = True
            if due:
                record = TrainRecord(epoch, loss.item(), test_loss.item(), train_acc, test_acc)
                result.curve.append(record)
        if on_epoch is not None:
            on_epoch(epoch, record)
        if last:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return result


def evaluate(model: HookedTransformer, task: ModularAddition) -> dict[str, float]:
    """Train/test loss and accuracy of the full ``HookedTransformer`` forward pass."""
    device = model.cfg.device
    with torch.no_grad():
        logits = model(task.tokens.to(device))[:, -1]
    labels = task.labels.to(device)
    out = {}
    for split, idx in (("train", task.train_idx), ("test", task.test_idx)):
        loss, acc = loss_and_accuracy(logits[idx.to(device)], labels[idx.to(device)])
        out[f"{split}_loss"], out[f"{split}_accuracy"] = float(loss), acc
    return out


def grid_activations(
    model: HookedTransformer, task: ModularAddition, hook: str, position: int
) -> torch.Tensor:
    """Activations at ``hook`` and ``position`` over all ``p*p`` inputs, ``[p*p, width]``, row
    ``a*p+b`` (per-head hooks such as ``hook_z`` are flattened to ``heads * d_head``)."""
    device = model.cfg.device
    with torch.no_grad():
        _, cache_ = model.run_with_cache(task.tokens.to(device), names_filter=hook)
    return cache_[hook][:, position].detach().flatten(1).to("cpu", torch.float32).contiguous()
