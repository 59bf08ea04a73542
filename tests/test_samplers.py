"""The samplers as named parts (grpo_lab/samplers/): `lean` held to `hf`, `auto`'s choice, the config key.

`hf` (Hugging Face's forward with a KV cache) is the reference. For the same generator `lean` must
draw the same tokens, and the log-probabilities it samples from must match `hf`'s within float
rounding (it merges LoRA into the weights, so the matmuls differ), with and without LoRA, with stop
strings and forbidden tokens, on the micro world's Llama and on a tiny Qwen2.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM

from grpo_lab.cli import packaged_config
from grpo_lab.config import Config, ConfigError, ModelConfig, load_config
from grpo_lab.grpo import selective_log_probs
from grpo_lab.micro_world import DEFAULT_MODEL_DIR, prompt_for
from grpo_lab.models import add_lora, load_tokenizer
from grpo_lab.rollout import generate
from grpo_lab.samplers import HFSampler, LeanDecoder, LeanSampler, make_sampler, resolve_sampler
from grpo_lab.samplers import hf as hf_module
from grpo_lab.samplers import lean as lean_module

PROMPTS = [prompt_for("1 + 2 = ?"), prompt_for("3 + 4 + 5 + 6 + 7 = ?"), prompt_for("9 + 9 = ?")]


def _model(path, lora: bool, seed: int = 0):
    """The model (random LoRA B when `lora`, so that the adapters change the logits) and its tokenizer."""
    model, tok = AutoModelForCausalLM.from_pretrained(path), load_tokenizer(str(path))
    if lora:
        model = add_lora(model, ModelConfig(lora_r=4, lora_alpha=8))
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return model, tok


def _path(which, tiny_model_dir):
    if which == "tiny_qwen2":
        return tiny_model_dir
    if not (DEFAULT_MODEL_DIR / "model.safetensors").exists():
        pytest.skip("the micro model is not built")
    return DEFAULT_MODEL_DIR


def _sample_recording_log_probs(monkeypatch, module, sampler, model, tok, **kwargs):
    """Run `sampler`, recording log-softmax(logits) at each drawn token (the rows sampled that step, in order)."""
    steps: list[torch.Tensor] = []
    original = module.sample_token

    def recording(logits, temperature, top_p, generator, banned=None):
        tokens = original(logits, temperature, top_p, generator, banned)
        steps.append(logits.float().log_softmax(-1).gather(-1, tokens[:, None]).squeeze(-1))
        return tokens

    monkeypatch.setattr(module, "sample_token", recording)
    out = sampler.generate(model, tok, PROMPTS, generator=torch.Generator().manual_seed(7), **kwargs)
    monkeypatch.setattr(module, "sample_token", original)
    return out, steps


@pytest.mark.parametrize("which", ["micro_llama", "tiny_qwen2"])
@pytest.mark.parametrize("lora", [False, True], ids=["base", "lora"])
@pytest.mark.parametrize("temperature, top_p, stops, forbid", [
    (1.0, 1.0, ("</answer>",), False), (0.6, 0.95, (), False), (1.3, 1.0, ("</answer>",), True),
], ids=["stop", "top_p", "forbid"])
def test_lean_draws_the_hf_samplers_tokens_with_the_same_log_probs(
    monkeypatch, tiny_model_dir, which, lora, temperature, top_p, stops, forbid
):
    model, tok = _model(_path(which, tiny_model_dir), lora)
    forbid_ids = [tok.convert_tokens_to_ids(" 7"), tok.convert_tokens_to_ids(" wait")] if forbid else []
    kwargs = dict(num_samples=4, max_new_tokens=40, temperature=temperature, top_p=top_p, stop_strings=stops,
                  forbid_token_ids=forbid_ids)
    hf, hf_steps = _sample_recording_log_probs(monkeypatch, hf_module, HFSampler(), model, tok, **kwargs)
    lean, lean_steps = _sample_recording_log_probs(monkeypatch, lean_module, LeanSampler(), model, tok, **kwargs)

    assert torch.equal(hf.completion_ids, lean.completion_ids)
    assert torch.equal(hf.completion_mask, lean.completion_mask)
    assert torch.equal(hf.truncated, lean.truncated)
    assert hf.completions == lean.completions
    assert len(set(lean.lengths.tolist())) > 1, "rows should finish at different steps (exercises compaction)"
    if stops:
        assert any(c.endswith("</answer>") for c in lean.completions), "no row stopped at the stop string"
    if forbid:
        assert not set(lean.completion_ids[lean.completion_mask.bool()].tolist()) & set(forbid_ids)
    assert [len(s) for s in hf_steps] == [len(s) for s in lean_steps]
    torch.testing.assert_close(torch.cat(lean_steps), torch.cat(hf_steps), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("decoder", ["hf", "lean"])
def test_each_samplers_log_probs_are_the_training_forwards(monkeypatch, tiny_model_dir, decoder):
    """What a sampler drew from is what training scores: the log-probs it sampled with equal those of
    one forward pass over the left-padded prompt + completion (the trainer's computation)."""
    model, tok = _model(DEFAULT_MODEL_DIR if (DEFAULT_MODEL_DIR / "model.safetensors").exists() else tiny_model_dir,
                        lora=True)
    module, sampler = (hf_module, HFSampler()) if decoder == "hf" else (lean_module, LeanSampler())
    out, steps = _sample_recording_log_probs(monkeypatch, module, sampler, model, tok, num_samples=2,
                                             max_new_tokens=24, temperature=1.0, top_p=1.0, stop_strings=())
    # Step t's log-probs belong to the rows still writing at t, in row order.
    sampled = torch.zeros(out.completion_ids.shape)
    for t, values in enumerate(steps):
        sampled[out.lengths > t, t] = values
    ids = torch.cat([out.prompt_ids, out.completion_ids], 1)
    mask = torch.cat([out.prompt_mask, out.completion_mask], 1)
    T = out.completion_ids.size(1)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                       logits_to_keep=T + 1).logits[:, :-1]
    trained = selective_log_probs(logits, out.completion_ids) * out.completion_mask
    torch.testing.assert_close(sampled, trained, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------------- choosing a sampler
def test_auto_picks_lean_for_the_micro_model_and_says_why():
    model, _ = _model(DEFAULT_MODEL_DIR, lora=True)
    sampler = resolve_sampler("auto", model)
    assert (sampler.name, type(sampler)) == ("lean", LeanSampler)
    assert "supports" in sampler.reason


def test_auto_falls_back_to_hf_with_the_lean_decoders_reason(tiny_model_dir):
    model, _ = _model(tiny_model_dir, lora=False)
    handle = model.lm_head.register_forward_hook(lambda m, i, o: o)
    sampler = resolve_sampler("auto", model)
    handle.remove()
    assert sampler.name == "hf"
    assert sampler.reason == f"auto: the lean decoder cannot run this model ({'forward hooks on lm_head'})"


def test_make_sampler_resolves_the_configured_name(tmp_path):
    from grpo_lab.models import load_model_and_tokenizer

    cfg = load_config(packaged_config("micro_r1_zero"))
    model, _ = load_model_and_tokenizer(cfg.model)
    picked = make_sampler(cfg, model)
    assert (picked.name, picked.reason) == ("lean", "auto: the lean decoder supports this model")
    forced = make_sampler(cfg.with_overrides(["grpo.sampler=hf"]), model)
    assert (forced.name, forced.reason) == ("hf", "grpo.sampler = hf")
    # Gradient checkpointing puts a forward hook on the embeddings: auto then samples with hf.
    gc = cfg.with_overrides(["model.gradient_checkpointing=true"])
    gc_model, _ = load_model_and_tokenizer(gc.model)
    assert make_sampler(gc, gc_model).name == "hf"
    with pytest.raises(ConfigError, match=r"grpo.sampler = 'lean': the lean decoder cannot run this model: "
                                          r"forward hooks on model.embed_tokens"):
        make_sampler(gc.with_overrides(["grpo.sampler=lean"]), gc_model)


def test_the_lean_sampler_refuses_a_model_it_cannot_compute(tiny_model_dir):
    model, tok = _model(tiny_model_dir, lora=False)
    model.config.hidden_act = "gelu"
    with pytest.raises(ValueError, match="lean decoder cannot run this model: hidden_act 'gelu'"):
        generate(model, tok, PROMPTS, max_new_tokens=2, decoder="lean")
    with pytest.raises(ValueError, match="the lean sampler cannot run this model"):
        LeanSampler().generate(model, tok, PROMPTS, num_samples=1, max_new_tokens=2, temperature=1.0, top_p=1.0,
                               stop_strings=(), generator=None)
    assert resolve_sampler("auto", model).name == "hf"
    with pytest.raises(ValueError, match=r"sampler 'fast' is unknown; allowed: \['auto', 'hf', 'lean', 'vllm'\]"):
        resolve_sampler("fast", model)


def test_evaluate_model_samples_with_the_sampler_it_is_given(tiny_model_dir):
    """The exam uses the configured sampler: a name or the run's sampler object. hf and lean give the
    same exam (same tokens), and a sampler object passed in is the one that is called."""
    from grpo_lab.evaluate import evaluate_model

    model, tok = _model(tiny_model_dir, lora=True)
    exam = [{"question": f"{a} + {b} = ?", "answer": str(a + b)} for a, b in ((1, 2), (3, 4), (5, 6))]
    common = dict(k=4, temperature=1.0, top_p=1.0, max_new_tokens=20, template="micro", seed=0, ks=(1,),
                  batch_size=8)  # 3 questions × k = 4 in batches of 8 sequences: 2 questions, then 1

    class Counting(HFSampler):
        calls = 0

        def generate(self, *args, **kwargs):
            Counting.calls += 1
            return super().generate(*args, **kwargs)

    by_name = {name: evaluate_model(model, tok, exam, sampler=name, **common) for name in ("auto", "hf", "lean")}
    counted = evaluate_model(model, tok, exam, sampler=Counting(), **common)
    assert Counting.calls == 2
    for result in (*by_name.values(), counted):
        assert result.samples["completion"].tolist() == by_name["hf"].samples["completion"].tolist()
    assert by_name["lean"].metrics == by_name["hf"].metrics


# ---------------------------------------------------------------------------- the config key
def test_grpo_sampler_defaults_to_auto_and_rejects_an_unknown_name():
    cfg = load_config(packaged_config("micro_r1_zero"))
    assert cfg.grpo.sampler == "auto" and cfg.grpo.use_vllm is False
    assert "sampler" in cfg.to_dict()["grpo"] and "use_vllm" not in cfg.to_dict()["grpo"]
    with pytest.raises(ConfigError, match=r"grpo.sampler = 'fast' is not allowed; allowed: "
                                          r"\['auto', 'hf', 'lean', 'vllm'\]"):
        load_config(packaged_config("micro_r1_zero"), ["grpo.sampler=fast"])


@pytest.mark.parametrize("use_vllm, sampler", [(True, "vllm"), (False, "auto")])
def test_use_vllm_still_loads_as_the_sampler_with_a_deprecation_warning(use_vllm, sampler):
    with pytest.warns(DeprecationWarning, match="grpo.use_vllm is deprecated; write grpo.sampler"):
        cfg = load_config(packaged_config("micro_r1_zero"), [f"grpo.use_vllm={str(use_vllm).lower()}"])
    assert cfg.grpo.sampler == sampler and cfg.grpo.use_vllm is use_vllm
    with pytest.warns(DeprecationWarning, match="grpo.use_vllm is deprecated"):
        cfg.grpo.use_vllm = not use_vllm  # code that sets the old attribute still works
    assert cfg.grpo.sampler == ("auto" if use_vllm else "vllm")


def test_use_vllm_that_contradicts_the_sampler_is_an_error():
    for overrides in (["grpo.use_vllm=true", "grpo.sampler=hf"], ["grpo.use_vllm=false", "grpo.sampler=vllm"]):
        with pytest.raises(ConfigError, match=r"grpo.use_vllm = (true|false) contradicts grpo.sampler"):
            load_config(packaged_config("micro_r1_zero"), overrides)
    with pytest.raises(ConfigError, match="grpo.use_vllm must be true or false"):
        load_config(packaged_config("micro_r1_zero"), ["grpo.use_vllm=maybe"])


def test_an_old_runs_config_yaml_still_loads_and_resumes(tmp_path):
    """Runs saved before grpo.sampler existed have `use_vllm: false` in their config.yaml."""
    old = Config().to_dict()
    old["grpo"] = {("use_vllm" if key == "sampler" else key): (False if key == "sampler" else value)
                   for key, value in old["grpo"].items()}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(old, sort_keys=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        saved = load_config(path)
        now = load_config(path, ["grpo.steps=999"])
    assert saved.grpo.sampler == "auto"
    now.check_resume(saved)  # nothing but grpo.steps changed


def test_sampler_can_be_resumed_only_unchanged(tmp_path):
    cfg = load_config(packaged_config("micro_r1_zero"))
    with pytest.raises(ConfigError, match="a resume cannot change grpo.sampler"):
        cfg.with_overrides(["grpo.sampler=hf"]).check_resume(cfg)


def test_lean_decoder_is_the_same_class_under_its_old_import_path():
    from grpo_lab import rollout

    assert rollout.LeanDecoder is LeanDecoder
