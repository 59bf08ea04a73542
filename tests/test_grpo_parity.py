"""Parity of grpo_lab.grpo with TRL 1.16's GRPOTrainer (trl is a test dependency only).

The issue asks: on identical inputs (log-probs of policy, old policy and reference, masks, rewards)
our loss and its gradient equal what TRL's GRPOTrainer computes, for every loss_type, within 1e-5
in fp32. How TRL's computation is isolated, without `train()` and without a network:

* a 1-layer random LlamaForCausalLM (vocab 64, hidden 32, fp32) and a word-level tokenizer built
  with `tokenizers` are saved to a temporary directory, and a real `GRPOTrainer` is built from
  that path (so that with β ≠ 0 it can build its reference model from `name_or_path`);
* the loss is TRL's own `GRPOTrainer._compute_loss(model, inputs)`, called on a hand-made batch
  dict (prompt/completion ids and masks, advantages, old and reference log-probs,
  `num_items_in_batch`) after setting `current_gradient_accumulation_steps = 1`, which
  `training_step` would otherwise set. TRL computes the policy log-probs itself, through the fused
  LM head it patches onto the model; we compute ours from the same model's ordinary logits with
  `selective_log_probs`, then call `grpo_loss`. Loss, every parameter gradient and the logged
  kl / clip-ratio / entropy metrics are compared;
* advantages come from TRL's own `_generate_and_score_completions` (it really generates with the
  tiny model and calls a reward function that returns rewards we chose), so no TRL formula is
  re-written in this file.

TRL 1.16 facts this relies on, found in its source (trl/trainer/grpo_trainer.py):
* GRPOConfig defaults to `bf16=True`, and on CPU the fused LM head then computes the logits under
  bf16 autocast (log-probs off by ~1e-3); fp32 parity needs `bf16=False`.
* GRPOConfig defaults to `use_bias_correction_kl=True`, which multiplies the k3 KL term by the
  importance ratio π_θ/π_old (DeepSeek-V3.2). grpo_lab implements DeepSeekMath's plain k3 term
  (docs/reference.md §2.3), which is TRL's `use_bias_correction_kl=False`. The two differ in value off-policy
  and in gradient even on-policy (the ratio is 1 but differentiable); see the last test.
"""

from __future__ import annotations

import os
import warnings

import pytest
import torch

pytest.importorskip("trl")

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from datasets import Dataset  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402
from trl.trainer.utils import selective_log_softmax  # noqa: E402

from grpo_lab.grpo import compute_advantages, entropy_from_logits, grpo_loss, selective_log_probs  # noqa: E402

VOCAB = 64
PAD, EOS = 0, 1
GROUP = 4  # completions per prompt
B, P, T = 8, 4, 6  # sequences, prompt length, completion length (= max_completion_length)
EPS, EPS_HIGH = 0.2, 0.28
ATOL = 1e-5

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny random fp32 Llama and a local word-level tokenizer, saved where TRL can load them."""
    path = tmp_path_factory.mktemp("tiny_llama")
    vocab = {"<pad>": PAD, "<eos>": EOS, **{f"t{i}": i for i in range(2, VOCAB)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=PAD,
        bos_token_id=EOS,
        eos_token_id=EOS,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).to(torch.float32).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _reward_from_column(completions, r, **kwargs):
    """Trivial reward function: hands back the reward stored in the dataset row."""
    return [float(x) for x in r]


def make_trainer(model_dir, **overrides) -> GRPOTrainer:
    settings = dict(
        output_dir=str(model_dir / "trl_out"),
        report_to="none",
        use_cpu=True,
        bf16=False,  # TRL's default bf16=True runs the fused LM head under bf16 autocast
        use_bias_correction_kl=False,  # DeepSeekMath's plain k3 term (see the module docstring)
        save_strategy="no",
        logging_steps=1,
        loss_type="dapo",
        beta=0.0,
        epsilon=EPS,
        epsilon_high=EPS_HIGH,
        max_completion_length=T,
        temperature=1.0,
        num_generations=GROUP,
        per_device_train_batch_size=GROUP,
        gradient_accumulation_steps=1,
        seed=0,
    )
    settings.update(overrides)
    dataset = Dataset.from_dict({"prompt": ["t2 t3"] * GROUP, "r": [0.0] * GROUP})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = GRPOTrainer(
            model=str(model_dir),
            reward_funcs=_reward_from_column,
            args=GRPOConfig(**settings),
            train_dataset=dataset,
            processing_class=PreTrainedTokenizerFast.from_pretrained(model_dir),
        )
    trainer.model.train()  # the training branch of _compute_loss (dropout is 0 in this model)
    trainer.current_gradient_accumulation_steps = 1  # normally set by training_step
    assert trainer.model.dtype == torch.float32
    assert (trainer.ref_model is not None) == (trainer.beta != 0.0)
    return trainer


def make_batch(model, temperature: float = 1.0, seed: int = 1) -> dict[str, torch.Tensor]:
    """Random ids and masks (left-padded prompts, right-padded completions of varying length),
    rewards → our advantages, and old / reference log-probs = policy log-probs + noise, so that
    ratios are ≠ 1 and some are clipped on both sides."""
    g = torch.Generator().manual_seed(seed)
    prompt_ids = torch.randint(2, VOCAB, (B, P), generator=g)
    prompt_lengths = torch.tensor([4, 2, 3, 4, 1, 4, 3, 4])
    prompt_mask = (torch.arange(P)[None] >= (P - prompt_lengths)[:, None]).long()
    prompt_ids = prompt_ids.masked_fill(prompt_mask == 0, PAD)
    completion_ids = torch.randint(2, VOCAB, (B, T), generator=g)
    lengths = torch.tensor([6, 5, 3, 6, 1, 4, 6, 2])
    completion_mask = (torch.arange(T)[None] < lengths[:, None]).long()
    completion_ids = completion_ids.masked_fill(completion_mask == 0, PAD)
    with torch.no_grad():
        policy = policy_log_probs(model, prompt_ids, prompt_mask, completion_ids, completion_mask, temperature)
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.3, -1.2, 2.0, 0.7])
    advantages, _ = compute_advantages(rewards, GROUP, "group")
    return {
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "advantages": advantages,
        "old_per_token_logps": policy + 0.3 * torch.randn(B, T, generator=g),
        "ref_per_token_logps": policy + 0.3 * torch.randn(B, T, generator=g),
        "num_items_in_batch": completion_mask.sum(),
    }


def completion_logits(model, prompt_ids, prompt_mask, completion_ids, completion_mask):
    """Mirror TRL's forward: input_ids = cat(prompt, completion), attention_mask = cat(masks), no
    position ids; the logits at position t predict token t + 1, so the completion's are the T
    positions before the last."""
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    return logits[:, -completion_ids.size(1) - 1 : -1]


def policy_log_probs(model, prompt_ids, prompt_mask, completion_ids, completion_mask, temperature=1.0):
    logits = completion_logits(model, prompt_ids, prompt_mask, completion_ids, completion_mask)
    return selective_log_probs(logits, completion_ids, temperature=temperature)


def trl_loss_and_grads(trainer, inputs):
    model = trainer.model
    model.zero_grad(set_to_none=True)
    trainer._metrics["train"].clear()
    loss = trainer._compute_loss(model, dict(inputs))
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    model.zero_grad(set_to_none=True)
    return loss.detach(), grads, metrics


def our_loss_and_grads(trainer, inputs, **loss_kwargs):
    model = trainer.model
    model.zero_grad(set_to_none=True)
    logits = completion_logits(
        model, inputs["prompt_ids"], inputs["prompt_mask"], inputs["completion_ids"], inputs["completion_mask"]
    )
    per_token_logps = selective_log_probs(logits, inputs["completion_ids"], temperature=trainer.temperature)
    old = inputs.get("old_per_token_logps")
    loss, stats = grpo_loss(
        per_token_logps,
        per_token_logps.detach() if old is None else old,
        inputs["advantages"],
        inputs["completion_mask"],
        loss_type=trainer.loss_type,
        epsilon=trainer.epsilon_low,
        epsilon_high=trainer.epsilon_high,
        beta=trainer.beta,
        ref_per_token_logps=inputs.get("ref_per_token_logps"),
        max_completion_length=trainer.max_completion_length,
        **loss_kwargs,
    )
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    mask = inputs["completion_mask"].float()
    stats["entropy"] = (entropy_from_logits(logits, trainer.temperature) * mask).sum() / mask.sum()
    model.zero_grad(set_to_none=True)
    return loss.detach(), grads, stats


def assert_parity(ours, theirs, check_metrics=True):
    (loss_ours, grads_ours, stats), (loss_trl, grads_trl, metrics) = ours, theirs
    torch.testing.assert_close(loss_ours, loss_trl, atol=ATOL, rtol=0)
    assert grads_ours.keys() == grads_trl.keys()
    for name in grads_trl:
        torch.testing.assert_close(grads_ours[name], grads_trl[name], atol=ATOL, rtol=0, msg=f"gradient of {name}")
    assert sum(g.abs().sum() for g in grads_trl.values()) > 0  # a real gradient, not 0 == 0
    if check_metrics:
        for key in ("kl", "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "entropy"):
            if key in metrics or key in stats:
                assert float(stats[key]) == pytest.approx(metrics[key], abs=ATOL), key


# -------------------------------------------------------------------------------- tests
def test_selective_log_probs_equals_trl_selective_log_softmax():
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(3, 7, 50, generator=g)
    index = torch.randint(0, 50, (3, 7), generator=g)
    for temperature in (1.0, 0.7):
        torch.testing.assert_close(
            selective_log_probs(logits, index, temperature=temperature),
            selective_log_softmax(logits, index, temperature=temperature),
            atol=1e-6,
            rtol=1e-6,
        )


def test_policy_log_probs_match_trl_forward(model_dir):
    """Our forward (ordinary logits + selective_log_probs) gives TRL's fused-head log-probs."""
    trainer = make_trainer(model_dir)
    inputs = make_batch(trainer.model)
    input_ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    attention_mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
    with torch.no_grad():
        theirs, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, input_ids, attention_mask, T)
        ours = policy_log_probs(trainer.model, *(inputs[k] for k in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")))
    mask = inputs["completion_mask"].bool()
    torch.testing.assert_close(ours[mask], theirs[mask], atol=1e-6, rtol=0)


@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dapo", "dr_grpo"])
def test_loss_and_gradient_match_trl(model_dir, loss_type, beta):
    trainer = make_trainer(model_dir, loss_type=loss_type, beta=beta)
    inputs = make_batch(trainer.model)
    theirs = trl_loss_and_grads(trainer, inputs)
    # dapo's normaliser is passed the way TRL gets it; the other types use this batch's own counts.
    kwargs = {"num_items_in_batch": inputs["num_items_in_batch"]} if loss_type == "dapo" else {}
    ours = our_loss_and_grads(trainer, inputs, **kwargs)
    assert_parity(ours, theirs)
    # the batch exercises both clipping sides, so clipping is compared, not just the linear part
    assert theirs[2]["clip_ratio/low_mean"] > 0 and theirs[2]["clip_ratio/high_mean"] > 0
    if loss_type == "dapo":  # and our default normaliser (this batch's tokens) is TRL's one-batch value
        torch.testing.assert_close(our_loss_and_grads(trainer, inputs)[0], theirs[0], atol=ATOL, rtol=0)


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo"])
def test_temperature_scaled_log_probs_match_trl(model_dir, loss_type):
    trainer = make_trainer(model_dir, loss_type=loss_type, beta=0.04, temperature=0.7)
    inputs = make_batch(trainer.model, temperature=0.7)
    assert_parity(our_loss_and_grads(trainer, inputs), trl_loss_and_grads(trainer, inputs))


def test_on_policy_batch_without_old_log_probs_matches_trl(model_dir):
    """μ = 1: TRL drops old_per_token_logps and uses per_token_logps.detach(); so do we."""
    trainer = make_trainer(model_dir, loss_type="grpo", beta=0.04)
    inputs = make_batch(trainer.model)
    del inputs["old_per_token_logps"]
    ours, theirs = our_loss_and_grads(trainer, inputs), trl_loss_and_grads(trainer, inputs)
    assert_parity(ours, theirs)
    assert theirs[2]["clip_ratio/region_mean"] == 0.0


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_micro_batches_with_global_normalisers_match_trl_gradient_accumulation(model_dir, loss_type):
    """TRL splits a generation batch into gradient-accumulation steps and rescales each piece;
    our num_sequences / num_items_in_batch arguments must give every piece the same loss."""
    trainer = make_trainer(model_dir, loss_type=loss_type, beta=0.04, gradient_accumulation_steps=2)
    trainer.current_gradient_accumulation_steps = 2
    assert trainer.args.steps_per_generation == 2
    full = make_batch(trainer.model)
    for rows in (slice(0, B // 2), slice(B // 2, B)):
        piece = {k: (v if k == "num_items_in_batch" else v[rows]) for k, v in full.items()}
        theirs = trl_loss_and_grads(trainer, piece)
        ours = our_loss_and_grads(
            trainer, piece, num_sequences=B, num_items_in_batch=full["completion_mask"].sum()
        )
        assert_parity(ours, theirs, check_metrics=False)


@pytest.mark.parametrize("scale_rewards", ["group", "batch", "none"])
def test_advantages_match_trl_generate_and_score(model_dir, scale_rewards):
    """TRL's own advantage code (inside _generate_and_score_completions, which generates with the
    tiny model and scores with rewards we chose) gives our compute_advantages; the generated batch
    then goes through both losses (TRL's real padding, EOS truncation, on-policy μ = 1)."""
    trainer = make_trainer(model_dir, scale_rewards=scale_rewards, max_completion_length=5)
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.3, -1.2, 2.0, 0.7])
    prompts = ["t2 t9", "t3", "t4 t5 t6"]  # different lengths: left padding
    rows = [{"prompt": prompts[i // GROUP], "r": float(r)} for i, r in enumerate(rewards)]
    torch.manual_seed(0)
    batch = trainer._generate_and_score_completions(rows)

    ours, stats = compute_advantages(rewards, GROUP, scale_rewards)
    torch.testing.assert_close(ours, batch["advantages"], atol=1e-6, rtol=0)
    logged = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    assert stats["reward"] == pytest.approx(logged["reward"], abs=1e-6)
    if scale_rewards != "batch":  # TRL's "batch" counts a zero *batch* std, we count zero-std groups
        assert stats["frac_reward_zero_std"] == pytest.approx(logged["frac_reward_zero_std"], abs=1e-6)

    assert "old_per_token_logps" not in batch  # μ = 1, β = 0: TRL leaves it out
    assert_parity(
        our_loss_and_grads(trainer, batch, num_items_in_batch=batch["num_items_in_batch"]),
        trl_loss_and_grads(trainer, batch),
    )


def test_trl_default_bias_corrected_kl_differs_from_paper_k3(model_dir):
    """Documents why the parity tests set use_bias_correction_kl=False: TRL 1.16's default
    multiplies the k3 term by the (differentiable) ratio, which changes the gradient."""
    trainer = make_trainer(model_dir, loss_type="grpo", beta=0.04, use_bias_correction_kl=True)
    inputs = make_batch(trainer.model)
    loss_trl, grads_trl, _ = trl_loss_and_grads(trainer, inputs)
    loss_ours, grads_ours, _ = our_loss_and_grads(trainer, inputs)
    differs = max((grads_ours[n] - grads_trl[n]).abs().max().item() for n in grads_trl)
    assert differs > 10 * ATOL or abs(loss_ours - loss_trl) > 10 * ATOL
