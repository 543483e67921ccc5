"""Section "Fourier ground truth": key frequencies and where the activations' variance is."""

from __future__ import annotations

from dataclasses import dataclass

from paper.cite import Citer
from paper.figures import FOURIER
from paper.metrics import Metrics
from paper.report.common import fig_ref, table

TRAINED = ("activation_key_frequency_variance_share",)
UNTRAINED = ("untrained_activation_key_frequency_variance_share",)


@dataclass(frozen=True)
class Facts:
    n_key_frequencies: int
    trained_above_untrained: bool  # key-frequency variance share, trained > untrained


def decide(m: Metrics) -> Facts:
    keys = m.get(FOURIER, ("key_frequencies",))
    t, u = m.get(FOURIER, TRAINED), m.get(FOURIER, UNTRAINED)
    return Facts(
        n_key_frequencies=len(keys),
        trained_above_untrained=t is not None and u is not None and t > u,
    )


def render(c: Citer, f: Facts, build) -> str:
    key_text = ", ".join(
        c.num(FOURIER, ("key_frequencies", i), "d") for i in range(f.n_key_frequencies)
    )
    rows = [
        ("key frequencies", key_text),
        (
            "embedding norm² share of the key frequencies",
            c.num(FOURIER, ("embedding_key_frequency_share",), ".1%"),
        ),
        ("activation variance in key-frequency blocks, trained", c.num(FOURIER, TRAINED, ".1%")),
        (
            "the same, untrained model (trained model's key frequencies)",
            c.num(FOURIER, UNTRAINED, ".1%"),
        ),
        (
            "pure MLP neurons (one frequency holds most of the variance)",
            c.num(FOURIER, ("neuron_purity_fraction",), ".1%"),
        ),
        (
            "activation effective rank, trained / untrained",
            f"{c.num(FOURIER, ('activation_effective_rank',), '.1f')} / "
            f"{c.num(FOURIER, ('untrained_activation_effective_rank',), '.1f')}",
        ),
        ("activation dimension", c.num(FOURIER, ("activation_dim",), "d")),
    ]
    verdict = "holds far more" if f.trained_above_untrained else "does **not** hold more"
    return table(rows) + (
        f"\nThe trained model's activations put {c.num(FOURIER, TRAINED, '.1%')} of their "
        f"variance in the key-frequency blocks; an untrained model of the same shape puts "
        f"{c.num(FOURIER, UNTRAINED, '.1%')} there, "
        f"so the trained model {verdict} than chance ({fig_ref(build, 'fig2_fourier')}). "
        "These Fourier directions are the ground truth the SAEs are scored against.\n"
    )


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
