"""Params validation: every bad value names its key and value in one line."""

from __future__ import annotations

import copy

import pytest

from husai.config import ACTIVATION_HOOKS, parse_params
from husai.errors import ParamError


def with_value(raw: dict, dotted: str, value: object) -> dict:
    raw = copy.deepcopy(raw)
    *path, last = dotted.split(".")
    node = raw
    for key in path:
        node = node[key]
    node[last] = value
    return raw


def test_the_tiny_profile_and_the_default_params_parse(tiny_params_raw: dict, repo_root) -> None:
    from ruamel.yaml import YAML

    tiny = parse_params(tiny_params_raw)
    assert tiny.task.p == 31
    default = parse_params(
        YAML(typ="safe", pure=True).load((repo_root / "params.yaml").read_text())
    )
    assert default.task.p == 113 and default.transformer.d_model == 128


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("task.p", 2, "odd integer >= 3"),
        ("task.p", 24, "odd integer >= 3"),
        ("task.p", "113", "must be an integer"),
        ("task.frac_train", 0.0, "strictly between 0 and 1"),
        ("task.frac_train", 1.0, "strictly between 0 and 1"),
        ("task.frac_train", 1.5, "strictly between 0 and 1"),
        ("task.frac_train", 0.0001, "empty train or test set"),
        ("transformer.lr", -0.001, "must be > 0"),
        ("transformer.lr", "fast", "must be a number"),
        ("transformer.beta2", 1.0, "[0, 1)"),
        ("transformer.epochs", 0, ">= 1"),
        ("transformer.train_biases", 1, "true or false"),
        ("activations.hooks.modular", "blocks.0.hook_resid_psot", "unknown hook name"),
        ("activations.hooks", {"mlp": "blocks.0.mlp.hook_post"}, "must name the primary domain"),
        ("activations.hooks.Mlp", "blocks.0.mlp.hook_post", "lowercase letters, digits and _"),
        ("activations.hooks.circles", "blocks.0.mlp.hook_post", "is also a control domain"),
        ("activations.position", 3, "token positions"),
        ("runtime.device", "tpu", "must be one of cpu, cuda"),
        ("runtime.threads", 0, ">= 1"),
    ],
)
def test_bad_values_name_key_and_value(
    tiny_params_raw: dict, key: str, value: object, reason: str
) -> None:
    with pytest.raises(ParamError) as info:
        parse_params(with_value(tiny_params_raw, key, value))
    message = str(info.value)
    assert info.value.key == key
    assert message.startswith(f"{key} = {value!r}: ")
    assert reason in message
    assert "\n" not in message


def test_unknown_and_missing_keys(tiny_params_raw: dict) -> None:
    with pytest.raises(ParamError, match=r"^transformer\.lrr = 0\.1: unknown key"):
        parse_params(with_value(tiny_params_raw, "transformer.lrr", 0.1))
    raw = copy.deepcopy(tiny_params_raw)
    del raw["task"]["seed"]
    with pytest.raises(ParamError, match=r"^task\.seed: missing from params.yaml$"):
        parse_params(raw)


def test_numbers_are_coerced_helpfully(tiny_params_raw: dict) -> None:
    # PyYAML-style strings such as "1e-3" and integral floats are accepted
    params = parse_params(
        with_value(with_value(tiny_params_raw, "transformer.lr", "1e-3"), "task.p", 23.0)
    )
    assert params.transformer.lr == 0.001 and params.task.p == 23


def test_hook_list_matches_transformer_lens() -> None:
    from husai.transformer import hook_names

    assert hook_names() == ACTIVATION_HOOKS


@pytest.mark.parametrize("profile", ["params.yaml", "tests/profiles/tiny.yaml"])
def test_profiles_set_every_sae_key(repo_root, profile) -> None:
    """DVC tracks single `sae` keys (the sweep stage), which must then be in the file;
    and no SAE result may hang on a default hidden in code."""
    import dataclasses

    from ruamel.yaml import YAML

    from husai.config import SAEParams

    raw = YAML(typ="safe", pure=True).load((repo_root / profile).read_text())
    assert [f.name for f in dataclasses.fields(SAEParams) if f.name not in raw["sae"]] == []
