"""The update in length-sorted micro-batches, each cut to its own padding (issue 5).

Cutting columns that are padding in every row of a piece, and splitting the batch, must not change
what is learned: the summed gradient equals the whole batch's in one rectangle, for every loss type.
"""

from __future__ import annotations

import pytest
import torch

from grpo_lab.logprobs import micro_batches, per_token_logps, per_token_logps_in_parts, training_batch
from grpo_lab.rewards import accuracy_reward, format_reward
from grpo_lab.trainer import GRPOTrainer
from tests.conftest import tiny_config


def _trainer(tiny_model_dir, tiny_exam, tmp_path, **grpo):
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", prompts_per_step=4, max_new_tokens=16, **grpo)
    trainer = GRPOTrainer(cfg, run_dir=tmp_path / "run", reward_funcs=[accuracy_reward, format_reward])
    with torch.no_grad():  # adapters that matter, so that the policy differs from the reference
        for name, p in trainer.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    return trainer


def _batch(trainer):
    from grpo_lab.data import format_prompt
    from grpo_lab.rollout import generate

    rows = trainer.prompts.next(trainer.config.grpo.prompts_per_step)
    prompts = [format_prompt(str(r["question"]), "micro") for r in rows]
    rollout = generate(trainer.model, trainer.tokenizer, prompts, num_samples=trainer.config.grpo.group_size,
                       max_new_tokens=trainer.config.grpo.max_new_tokens, generator=torch.Generator().manual_seed(0))
    assert len(set(rollout.lengths.tolist())) > 1
    return training_batch(rollout)


def test_pieces_cover_every_row_once_and_cut_only_padding(tiny_model_dir, tiny_exam, tmp_path):
    trainer = _trainer(tiny_model_dir, tiny_exam, tmp_path, micro_batch_size=3)
    batch = _batch(trainer)
    pieces = micro_batches(batch, trainer.config.grpo.micro_batch_size)
    rows = torch.cat([r for r, _ in pieces])
    assert sorted(rows.tolist()) == list(range(batch["input_ids"].size(0)))
    real_tokens = int(batch["attention_mask"].sum())
    assert sum(int(p["attention_mask"].sum()) for _, p in pieces) == real_tokens  # no real token cut
    assert sum(p["attention_mask"].numel() for _, p in pieces) < batch["attention_mask"].numel()  # padding cut
    for r, part in pieces:
        T = part["completion_ids"].size(1)
        assert torch.equal(part["completion_ids"], batch["completion_ids"][r, :T])
        assert part["position_ids"][part["attention_mask"].bool()].tolist() == \
            batch["position_ids"][r][batch["attention_mask"][r].bool()].tolist()


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo"])
def test_gradient_in_pieces_equals_the_whole_batch(tiny_model_dir, tiny_exam, tmp_path, loss_type):
    grads = {}
    for size in (3, 1000):  # three rows per piece, or the whole batch in one piece
        trainer = _trainer(tiny_model_dir, tiny_exam, tmp_path / str(size), micro_batch_size=size,
                           loss_type=loss_type, scale_rewards="none" if loss_type == "dr_grpo" else "group")
        torch.manual_seed(0)
        batch = _batch(trainer)
        n = batch["input_ids"].size(0)
        advantages = torch.linspace(-1, 1, n)
        with torch.no_grad(), trainer.reference.active() as reference:
            ref = per_token_logps_in_parts(reference, batch, trainer.config.grpo.temperature, trainer.config.grpo.micro_batch_size)
            ref_whole = per_token_logps(reference, batch, trainer.config.grpo.temperature)[0]
        mask = batch["completion_mask"].bool()
        torch.testing.assert_close(ref[mask], ref_whole[mask], atol=1e-5, rtol=1e-5)
        loss, stats = trainer.loss_and_backward(batch, advantages, None, ref)
        captured = {name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.grad is not None}
        grads[size] = (captured, loss, stats)
    (g3, loss3, stats3), (g_all, loss_all, stats_all) = grads[3], grads[1000]
    assert g3.keys() == g_all.keys() and g3
    for name in g3:
        torch.testing.assert_close(g3[name], g_all[name], atol=1e-6, rtol=1e-4)
    assert loss3 == pytest.approx(loss_all, abs=1e-6)
    assert stats3["kl"] == pytest.approx(stats_all["kl"], abs=1e-6)
