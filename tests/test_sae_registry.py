"""The architecture registry: one description per architecture, every list derived from it,
and each description true (the hyperparameters it declares are exactly those training reads)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import get_args, get_type_hints

import pytest
import torch

import husai.config as hc
import husai.sae as hs
from husai.errors import ParamError
from husai.sae import base, registry
from husai.sae import config as sae_config

ROOT = Path(__file__).resolve().parents[1]
FIELDS = [f.name for f in dataclasses.fields(hs.SAEHyperparams)]


def test_params_validation_does_not_import_torch() -> None:
    code = "import husai.config; import sys; assert 'torch' not in sys.modules"
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_every_list_of_architectures_is_the_registry() -> None:
    names = registry.names()
    assert names == hs.ARCHITECTURES == sae_config.ARCHITECTURES
    literal = get_type_hints(hc.SAEParams)["architecture"]  # what params validation accepts
    assert get_args(literal) == names
    assert tuple(hs.INFERENCE_KIND) == tuple(hc.SWEEP_KNOBS) == names
    assert tuple(base.INFERENCE_PARAMS) == registry.INFERENCE_KINDS
    for name in names:
        arch = hs.architecture(name)
        assert arch.spec is registry.spec(name) and arch.name == name
        assert type(arch).__module__ == f"husai.sae.{name}"


def all_subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *all_subclasses(sub))]


def test_every_training_class_has_a_registered_spec_and_vice_versa() -> None:
    for name in registry.names():
        hs.architecture(name)
    trained = {c.spec.name for c in all_subclasses(base.Architecture) if "spec" in vars(c)}
    assert trained == set(registry.names())


def test_the_derived_tables_are_the_old_hand_kept_ones() -> None:
    assert registry.names() == (
        "standard",
        "topk",
        "batchtopk",
        "jumprelu",
        "gated",
        "matryoshka_batchtopk",
    )
    assert sae_config.TOPK_FAMILY == {"topk", "batchtopk", "matryoshka_batchtopk"}
    assert sae_config.L1_FAMILY == {"standard", "gated"}
    assert hs.INFERENCE_KIND == {
        "standard": "standard",
        "topk": "topk",
        "batchtopk": "jumprelu",
        "matryoshka_batchtopk": "jumprelu",
        "jumprelu": "jumprelu",
        "gated": "gated",
    }
    assert hc.SWEEP_KNOBS == {
        "topk": "k",
        "batchtopk": "k",
        "matryoshka_batchtopk": "k",
        "standard": "l1_coefficient",
        "gated": "l1_coefficient",
        "jumprelu": "l0_coefficient",
    }
    assert registry.sweep_labels() == {
        "standard": "l1c",
        "topk": "k",
        "batchtopk": "k",
        "jumprelu": "l0c",
        "gated": "l1c",
        "matryoshka_batchtopk": "k",
    }


def test_sweep_configuration_names_are_unchanged(tiny_params_raw: dict) -> None:
    """The names label committed metric files: ``<arch>-d<d_sae>-<label><level>``."""
    raw = {
        **tiny_params_raw,
        "sweep": {
            "architectures": list(registry.names()),
            "d_sae": [8, 64],
            "sparsity": {
                a: ([16] if hc.SWEEP_KNOBS[a] == "k" else [13, 0.5]) for a in registry.names()
            },
        },
    }
    prm = hc.parse_params(raw)
    got = [n for a in registry.names() for d in (8, 64) for n in prm.sweep_configs(a, d)]
    assert got == [
        "standard-d8-l1c13",
        "standard-d8-l1c0.5",
        "standard-d64-l1c13",
        "standard-d64-l1c0.5",
        "topk-d8-k16",
        "topk-d64-k16",
        "batchtopk-d8-k16",
        "batchtopk-d64-k16",
        "jumprelu-d8-l0c13",
        "jumprelu-d8-l0c0.5",
        "jumprelu-d64-l0c13",
        "jumprelu-d64-l0c0.5",
        "gated-d8-l1c13",
        "gated-d8-l1c0.5",
        "gated-d64-l1c13",
        "gated-d64-l1c0.5",
        "matryoshka_batchtopk-d8-k16",
        "matryoshka_batchtopk-d64-k16",
    ]


def test_sweep_hyperparams_known_answer() -> None:
    common = (
        "sae.decoder_init_norm",
        "sae.normalize_activations",
        "sae.lr_warm_up_steps",
        "sae.adam_beta1",
        "sae.adam_beta2",
        "sae.max_grad_norm",
    )  # the convergence keys: the sweep sets its own (sweep.convergence*)
    assert registry.sweep_hyperparams(["topk"]) == (
        "sae.aux_loss_coefficient",
        "sae.dead_feature_window",
        "sae.rescale_acts_by_decoder_norm",
        *common,
    )
    assert registry.sweep_hyperparams(["standard", "gated"]) == ("sae.l1_warm_up_steps", *common)
    assert registry.sweep_hyperparams(["jumprelu", "batchtopk"]) == (
        "sae.aux_loss_coefficient",
        "sae.dead_feature_window",
        "sae.rescale_acts_by_decoder_norm",
        "sae.topk_threshold_lr",
        "sae.l0_warm_up_steps",
        "sae.jumprelu_init_threshold",
        "sae.jumprelu_bandwidth",
        *common,
    )
    every = registry.sweep_hyperparams(registry.names())
    # a knob of one architecture is read by no other: no knob is left; matryoshka's widths are
    assert "sae.matryoshka_widths" in every
    for key in ("k", "l1_coefficient", "l0_coefficient", *registry.SWEEP_OVERRIDES):
        assert f"sae.{key}" not in every


def test_declared_hyperparams_are_fields() -> None:
    for spec in registry.specs().values():
        assert set(spec.reads()) <= set(FIELDS), spec.name
        assert len(set(spec.reads())) == len(spec.reads()), spec.name


# ----------------------------------------------------------------------------- validation

BAD = [  # architecture-specific checks: (architecture, field, bad value, message)
    ("topk", "k", 0, "must be >= 1"),
    ("topk", "k", 65, "must be <= d_sae = 64"),
    ("topk", "aux_loss_coefficient", -1.0, "must be >= 0"),
    ("batchtopk", "k", 65, "must be <= d_sae = 64"),
    ("batchtopk", "topk_threshold_lr", 0.0, "must lie in (0, 1]"),
    ("batchtopk", "topk_threshold_lr", 1.5, "must lie in (0, 1]"),
    ("matryoshka_batchtopk", "aux_loss_coefficient", -1.0, "must be >= 0"),
    ("matryoshka_batchtopk", "topk_threshold_lr", 0.0, "must lie in (0, 1]"),
    ("matryoshka_batchtopk", "matryoshka_widths", (), "must list at least one width"),
    ("matryoshka_batchtopk", "matryoshka_widths", (0, 8), "widths must be >= 1"),
    ("matryoshka_batchtopk", "matryoshka_widths", (8, 8), "must be strictly increasing"),
    ("matryoshka_batchtopk", "matryoshka_widths", (8, 65), "widths must be <= d_sae = 64"),
    ("standard", "l1_coefficient", 0.0, "must be > 0"),
    ("gated", "l1_coefficient", -1.0, "must be > 0"),
    ("jumprelu", "l0_coefficient", 0.0, "must be > 0"),
    ("jumprelu", "jumprelu_bandwidth", 0.0, "must be > 0"),
    ("jumprelu", "jumprelu_init_threshold", -0.1, "must be >= 0"),
]


def valid(arch: str, **kw) -> hs.SAEHyperparams:
    return hs.SAEHyperparams(architecture=arch, d_sae=64, **{"matryoshka_widths": (8,), **kw})


@pytest.mark.parametrize(("arch", "field", "value", "reason"), BAD)
def test_each_architecture_checks_its_own_knobs(arch, field, value, reason) -> None:
    with pytest.raises(ParamError) as info:
        valid(arch, **{field: value}).validate()
    assert info.value.key == f"sae.{field}" and info.value.reason == reason


@pytest.mark.parametrize("arch", registry.names())
def test_an_architecture_ignores_knobs_it_does_not_read(arch) -> None:
    valid(arch).validate()
    for _, field, value, _ in BAD:
        if field not in registry.spec(arch).reads():
            valid(arch, **{field: value}).validate()


# ----------------------------------------------------------------------------- declared = read

BASE = {
    "d_sae": 16,
    "k": 3,
    "lr": 3e-3,
    "batch_size": 16,
    "epochs": 3,  # at most: with tol 1.0 and window 1 every seed converges after epoch 2
    "convergence_tol": 1.0,
    "convergence_window": 1,
    "dead_feature_window": 1,
    "l1_coefficient": 0.5,
    "l0_coefficient": 0.1,
    "matryoshka_widths": (6,),
}
OTHER = {  # a second valid value of every field, one that a short run can tell apart
    "d_sae": 24,
    "k": 2,
    "aux_loss_coefficient": 0.3,
    "dead_feature_window": 3,
    "rescale_acts_by_decoder_norm": False,
    "topk_threshold_lr": 0.5,
    "matryoshka_widths": (4, 10),
    "l1_coefficient": 2.0,
    "l1_warm_up_steps": 4,
    "l0_coefficient": 0.5,
    "l0_warm_up_steps": 4,
    "jumprelu_init_threshold": 0.2,
    "jumprelu_bandwidth": 0.5,
    "decoder_init_norm": 0.5,
    "normalize_activations": "expected_average_only_in",
    "lr": 1e-2,
    "lr_warm_up_steps": 4,
    "adam_beta1": 0.5,
    "adam_beta2": 0.9,
    "max_grad_norm": 0.01,
    "batch_size": 8,
    "epochs": 1,
    "convergence_tol": 0.0,
    "convergence_window": 2,
    "convergence": "explained_variance",
}


CONTEXT = {  # base values a field needs to make a difference: at tol 1.0 both criteria stop
    # after epoch 2; at this tolerance the loss and explained-variance criteria stop apart
    "convergence": {"convergence_tol": 0.03, "epochs": 8},
}


def run(config: hs.SAEConfig) -> list[torch.Tensor]:
    """Everything a short training run produces: the SAE's tensors and its curves."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(64, 8, generator=g) @ torch.randn(8, 8, generator=g) + 2.0
    sae, history = hs.train_saes(config, x, [1, 2])
    curves = [history.loss, history.mse, history.l0, history.dead]
    return [sae.params[n] for n in sorted(sae.params)] + curves


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(
        x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, b, strict=True)
    )


def test_every_field_has_another_value() -> None:
    assert set(OTHER) == set(FIELDS) - {"architecture"}


@pytest.mark.parametrize("arch", registry.names())
def test_declared_hyperparams_are_exactly_those_training_reads(arch) -> None:
    """Changing a field the spec does not declare leaves training bit-identical; changing
    one it declares (its knob among them) changes it."""
    spec = registry.spec(arch)
    reference = run(hs.SAEConfig(architecture=arch, d_in=8, **BASE))
    wrong = []
    for field, value in OTHER.items():
        base = {**BASE, **CONTEXT.get(field, {})}
        ref = (
            run(hs.SAEConfig(architecture=arch, d_in=8, **base)) if field in CONTEXT else reference
        )
        changed = run(hs.SAEConfig(architecture=arch, d_in=8, **{**base, field: value}))
        if same(changed, ref) == (field in spec.reads()):
            wrong.append(field)
    assert not wrong, f"{arch} declares wrongly whether it reads {wrong}"
