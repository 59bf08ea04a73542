"""Config: papers' defaults, YAML round trip, --set overrides, and errors that name the key."""

from __future__ import annotations

import pytest

from grpo_lab.cli import packaged_config
from grpo_lab.config import Config, ConfigError, load_config


def test_defaults_follow_deepseekmath_and_r1_evaluation():
    cfg = Config()
    assert (cfg.grpo.lr, cfg.grpo.beta, cfg.grpo.epsilon, cfg.grpo.num_iterations) == (1e-6, 0.04, 0.2, 1)
    assert cfg.grpo.loss_type == "grpo" and cfg.grpo.scale_rewards == "group"
    assert (cfg.eval.k, cfg.eval.temperature, cfg.eval.top_p) == (16, 0.6, 0.95)
    assert cfg.model.trust_remote_code is False
    assert cfg.tracking.wandb_mode == "offline"


def test_yaml_round_trip_keeps_every_value(tmp_path):
    cfg = Config().with_overrides(["grpo.beta=0.0", "model.lora_r=8", "rewards.weights=[1.0, 0.5]"])
    path = tmp_path / "c.yaml"
    cfg.to_yaml(path)
    assert Config.from_yaml(path) == cfg


def test_set_overrides_parse_values_as_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    Config().to_yaml(path)
    cfg = load_config(path, ["grpo.lr=3e-4", "grpo.loss_type=dr_grpo", "grpo.epsilon_high=null", "eval.k=4"])
    assert cfg.grpo.lr == 3e-4 and cfg.grpo.loss_type == "dr_grpo" and cfg.grpo.epsilon_high is None
    assert cfg.eval.k == 4


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("grpo.group_sise=4", "grpo.group_sise"),
        ("modle.lora_r=4", "modle"),
        ("grpo.group_size=1", "grpo.group_size"),
        ("grpo.epsilon=-0.1", "grpo.epsilon"),
        ("grpo.adam_epsilon=0", "grpo.adam_epsilon"),
        ("grpo.top_p=0", "grpo.top_p"),
        ("grpo.top_p=1.5", "grpo.top_p"),
        ("eval.top_p=0", "eval.top_p"),
        ("grpo.loss_type=ppo", "['grpo', 'bnpo', 'dapo', 'dr_grpo']"),
        ("grpo.scale_rewards=std", "grpo.scale_rewards"),
        ("grpo.group_size=eight", "grpo.group_size must be an integer"),
        ("model.trust_remote_code=maybe", "model.trust_remote_code"),
        ("rewards.functions=[accuracy, magic]", "magic"),
        ("rewards.weights=[1.0]", "rewards.weights"),
    ],
)
def test_bad_key_or_value_is_an_error_naming_the_key(override, fragment):
    with pytest.raises(ConfigError) as info:
        Config().with_overrides([override])
    assert fragment in str(info.value)


def test_unknown_key_error_lists_allowed_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("grpo:\n  beat: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'grpo.beat' \(did you mean grpo.beta\?\); allowed keys in grpo: .*'beta'"):
        Config.from_yaml(path)
    assert str(path) in _message(lambda: Config.from_yaml(path))


def test_override_without_equals_sign_is_explained():
    with pytest.raises(ConfigError, match="group.key=value"):
        Config().with_overrides(["grpo.beta"])


def test_missing_config_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        Config.from_yaml(tmp_path / "nope.yaml")


@pytest.mark.parametrize("name", ["micro_r1_zero", "micro_coin_flip"])
def test_packaged_configs_load(name):
    cfg = load_config(packaged_config(name))
    assert cfg.data.train == "micro" and cfg.eval.k == 16


def test_coin_flip_control_differs_from_main_run_only_in_rewards():
    main = load_config(packaged_config("micro_r1_zero")).to_dict()
    control = load_config(packaged_config("micro_coin_flip")).to_dict()
    for group in ("model", "grpo", "data", "eval"):
        assert main[group] == control[group], group
    assert control["rewards"]["functions"] == ["coin_flip"]


def _message(fn) -> str:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - we want the text
        return str(exc)
    return ""


def test_epsilon_high_with_one_update_per_batch_warns_that_it_cannot_act():
    with pytest.warns(UserWarning, match=r"grpo.epsilon_high = 0.28 has no effect with grpo.num_iterations = 1"):
        load_config(None, ["grpo.epsilon_high=0.28"])


def test_epsilon_high_with_several_updates_per_batch_does_not_warn(recwarn):
    load_config(None, ["grpo.epsilon_high=0.28", "grpo.num_iterations=2"])
    load_config(None, ["grpo.epsilon_high=0.2"])  # equal to epsilon: nothing claimed
    assert not [w for w in recwarn if "epsilon_high" in str(w.message)]


@pytest.mark.parametrize("name", sorted(p.stem for p in packaged_config("micro_r1_zero").parent.glob("*.yaml")))
def test_no_packaged_config_sets_a_clip_bound_that_cannot_act(name, recwarn):
    cfg = load_config(packaged_config(name))
    assert cfg.grpo.num_iterations > 1 or cfg.grpo.epsilon_high in (None, cfg.grpo.epsilon)
    assert not [w for w in recwarn if "epsilon_high" in str(w.message)]


def test_eval_forbid_phrases_is_a_list_of_phrases_defaulting_to_none():
    assert load_config(None).eval.forbid_phrases == []
    assert load_config(None, ["eval.forbid_phrases=[wait]"]).eval.forbid_phrases == ["wait"]
