"""LoRA GRPO on a Hugging Face causal LM, readable top to bottom (CleanRL style).

One training step (DeepSeekMath Algorithm 1, with μ inner iterations):

    1. draw prompts_per_step questions, sample G completions each        (rollout.generate)
    2. score them with the rule-based rewards                            (rewards.compute_rewards)
    3. group-relative advantages                                         (grpo.compute_advantages)
    4. log-probs of π_ref (adapters off) and, if μ > 1, of π_old          (no gradient)
    5. μ times: loss = GRPO objective, backward, clip, AdamW step        (grpo.grpo_loss)

Around it: exam evaluation every N steps, checkpoints (adapter, optimizer, RNG states, step)
written atomically, a local run log plus wandb (tracking.RunLogger), callbacks so a notebook can
watch live, and a progress bar with reward and length.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from grpo_lab.checkpoint import (
    CheckpointCorrupt,
    checkpoints_newest_first,
    find_valid_checkpoint,
    verify_checkpoint,
    write_manifest,
)
from grpo_lab.config import Config, ConfigError
from grpo_lab.data import PromptSource, format_prompt, load_exam
from grpo_lab.evaluate import ExamResult, evaluate_model
from grpo_lab.grpo import compute_advantages, entropy_from_logits, grpo_loss, selective_log_probs
from grpo_lab.health import HealthMonitor, unparsed_ratio  # issue 17: run-health checks, unparsed answers
from grpo_lab.models import ReferencePolicy, add_lora, load_model_and_tokenizer, trainable_parameters
from grpo_lab.phenomena import count_reflections
from grpo_lab.rewards import check_reward_functions, compute_rewards, get_reward_function, is_correct, seed_coin_flips
from grpo_lab.rollout import Rollout, generate
from grpo_lab.rundir import RunDirectoryLock, set_aside_previous_run
from grpo_lab.tracking import RunLogger, load_run, read_summary

SUMMARY_KEYS = ("pass@1", "cons@{k}", "pass@{k}", "mean_length", "reflection_rate")


class Callback:
    """Override what you need; the trainer calls these hooks (e.g. a live plot in a notebook)."""

    def on_step_end(self, trainer: GRPOTrainer, step: int, metrics: dict[str, float]) -> None: ...

    def on_evaluate(self, trainer: GRPOTrainer, step: int, result: ExamResult) -> None: ...

    def on_train_end(self, trainer: GRPOTrainer) -> None: ...


class TrainingStopped(RuntimeError):
    """Training stopped on purpose (e.g. too many NaN steps); the last good checkpoint is intact."""


class GRPOTrainer:
    """GRPO with LoRA adapters; the reference policy is the same model with adapters disabled.

    `model`/`tokenizer` default to what `config.model` names; `reward_funcs` to
    `config.rewards.functions`. Pass your own to experiment from a notebook.
    """

    def __init__(
        self,
        config: Config,
        model=None,
        tokenizer=None,
        reward_funcs: Sequence[Callable] | None = None,
        callbacks: Sequence[Callback | Callable] = (),
        run_dir: str | Path | None = None,
    ):
        self.config = cfg = config
        g = cfg.grpo
        _seed_everything(g.seed)
        # Data first: a bad dataset or exam file fails in a second, before a big model is loaded.
        self.exam = load_exam(cfg.eval.exam, cfg.data.question_field, cfg.data.answer_field)
        exam_questions = {str(row["question"]) for row in self.exam}
        self.prompts = PromptSource(cfg.data.train, g.seed, cfg.data.question_field, cfg.data.answer_field,
                                    exclude_questions=exam_questions)
        if model is None:
            model, tokenizer = load_model_and_tokenizer(cfg.model)
        elif cfg.model.use_lora and not hasattr(model, "disable_adapter"):
            model = add_lora(model, cfg.model)
        if tokenizer is None:
            raise ValueError("pass the tokenizer together with the model")
        self.model, self.tokenizer = model, tokenizer
        self.device = next(model.parameters()).device
        self.reference = ReferencePolicy(model, cfg.model.use_lora, needed=g.beta != 0.0)

        self.reward_funcs = list(reward_funcs) if reward_funcs is not None else [
            get_reward_function(name) for name in cfg.rewards.functions
        ]
        weights = list(cfg.rewards.weights)
        self.reward_weights = weights if len(weights) == len(self.reward_funcs) else [1.0] * len(self.reward_funcs)
        check_reward_functions(self.reward_funcs)  # duplicate names fail now, not after the step-0 exam
        # Every prompt known up front is checked now, not when it is first drawn mid-run.
        self._check_prompt_lengths([format_prompt(str(r["question"]), cfg.data.template, tokenizer) for r in self.exam],
                                   source=f"eval.exam ({cfg.eval.exam})")
        if self.prompts.rows:
            self._check_prompt_lengths(
                [format_prompt(str(r[cfg.data.question_field]), cfg.data.template, tokenizer) for r in self.prompts.rows],
                source=f"data.train ({cfg.data.train})",
            )
        self.optimizer = torch.optim.AdamW(
            trainable_parameters(model), lr=g.lr, weight_decay=g.weight_decay, eps=g.adam_epsilon
        )
        # Constant learning rate after a linear warm-up (DeepSeekMath uses a constant 1e-6).
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / g.warmup_steps) if g.warmup_steps > 0 else 1.0
        )
        self.generator = torch.Generator(device=self.device).manual_seed(g.seed)
        seed_coin_flips(g.seed)
        # Anything with the Callback hooks is a callback (e.g. plots.LivePlot); a plain function is on_step_end.
        self.callbacks = [c if hasattr(c, "on_step_end") else _FunctionCallback(c) for c in callbacks]
        self.run_dir = Path(run_dir) if run_dir is not None else config.run_dir
        # Held for the whole of train(); a caller that already holds it (the CLI, from before the
        # model is loaded) may put its own lock here, and train() then keeps it held.
        self.run_lock = RunDirectoryLock(self.run_dir)
        self.step = 0
        self.num_tokens = 0
        self.nonfinite_in_a_row = 0
        self.nonfinite_total = 0
        self.eval_results: dict[int, ExamResult] = {}
        # Eval metrics restored from a checkpoint whose step had been evaluated before it was saved.
        self._restored_eval: dict[int, dict[str, float]] = {}
        self._last_saved_step: int | None = None
        self.logger: RunLogger | None = None

    # ================================================================== the GRPO step
    def training_step(self) -> dict[str, float]:
        cfg, g = self.config, self.config.grpo
        G = g.group_size
        t_start = time.perf_counter()

        # 1. Rollout: G completions per prompt, from the current policy (= π_old).
        rows = self.prompts.next(g.prompts_per_step)
        prompts = [format_prompt(str(r["question"]), cfg.data.template, self.tokenizer) for r in rows]
        self._check_prompt_lengths(prompts, source=f"data.train ({cfg.data.train})")
        rollout = self._sample(
            self.model, self.tokenizer, prompts, num_samples=G, max_new_tokens=g.max_new_tokens,
            temperature=g.temperature, top_p=g.top_p, stop_strings=g.stop_strings, generator=self.generator,
        )
        t_rollout = time.perf_counter()

        # 2. Rewards: every dataset column is passed to the reward functions, repeated G times.
        keys = dict.fromkeys(key for r in rows for key in r if key != "question")
        columns = {key: [r.get(key) for r in rows for _ in range(G)] for key in keys}
        rewards, per_function = compute_rewards(
            self.reward_funcs, self.reward_weights, rollout.prompts, rollout.completions, columns
        )
        rewards = rewards.to(self.device)

        # 3. Group-relative advantages Â_i (DeepSeekMath Eq. 3; Dr. GRPO drops the std).
        advantages, reward_stats = compute_advantages(rewards, G, g.scale_rewards, g.std_eps)

        # 4. π_ref and π_old log-probs, without gradient. With μ = 1, π_old = π_θ at the update,
        #    so the ratio is exactly 1 and no extra pass is needed (its value is the detached π_θ).
        batch = self._training_batch(rollout)
        ref_logps = old_logps = None
        with torch.no_grad():
            if g.beta != 0.0:
                with self.reference.active() as reference_model:
                    ref_logps = self._per_token_logps_in_parts(reference_model, batch)
            if g.num_iterations > 1:
                old_logps = self._per_token_logps_in_parts(self.model, batch)
        t_scoring = time.perf_counter()

        # 5. μ policy updates on this batch.
        self.model.train()
        for _ in range(g.num_iterations):
            loss_value, stats, grad_norm = self._update(batch, advantages, old_logps, ref_logps)
        t_update = time.perf_counter()

        self.num_tokens += int(batch["attention_mask"].sum().item())
        metrics = {
            **reward_stats,
            **self._reward_metrics(per_function),
            **self._completion_metrics(rollout, rows, per_function.get("accuracy_reward")),
            **stats,
            "loss": loss_value,
            "grad_norm": grad_norm,
            "learning_rate": self.scheduler.get_last_lr()[0],
            "num_tokens": float(self.num_tokens),
            "step_time": t_update - t_start,
            "time/rollout": t_rollout - t_start,
            "time/scoring": t_scoring - t_rollout,
            "time/update": t_update - t_scoring,
        }
        self._last_rollout, self._last_rewards = rollout, rewards
        return metrics

    def _sample(self, *args, **kwargs) -> Rollout:
        """Training rollouts: grpo_lab.rollout.generate, or vLLM when grpo.use_vllm (same arguments, same Rollout)."""
        if not self.config.grpo.use_vllm:
            return generate(*args, **kwargs)
        if getattr(self, "_vllm", None) is None:
            from grpo_lab.vllm_rollout import make_sampler  # lazy: vllm is an optional extra

            self._vllm = make_sampler(self.config, self.model)
        return self._vllm.generate(*args, **kwargs)

    def _update(self, batch, advantages, old_logps, ref_logps) -> tuple[float, dict[str, float], float]:
        """One optimiser step: forward/backward over micro-batches, clip, AdamW. Skips NaN steps.

        The micro-batches are rows of similar completion length, each cut to its own longest
        prompt and completion (`_micro_batches`): the padding that a batch-wide rectangle would
        carry (often more than half its positions) is never computed.
        """
        g = self.config.grpo
        n = batch["input_ids"].size(0)
        # Normalisers of the whole batch, so that micro-batches sum to the full-batch loss.
        total_tokens = batch["completion_mask"].sum()
        totals: dict[str, float] = {}
        loss_value = 0.0
        for rows, part in self._micro_batches(batch):
            T = part["completion_ids"].size(1)
            logps, entropy = self._per_token_logps(self.model, part, with_entropy=True)
            old = logps.detach() if old_logps is None else old_logps[rows, :T]
            loss, stats = grpo_loss(
                logps, old, advantages[rows], part["completion_mask"],
                loss_type=g.loss_type, epsilon=g.epsilon, epsilon_high=g.epsilon_high, beta=g.beta,
                ref_per_token_logps=None if ref_logps is None else ref_logps[rows, :T],
                max_completion_length=g.max_new_tokens, num_items_in_batch=total_tokens, num_sequences=n,
            )
            loss.backward()
            loss_value += loss.item()
            mask = part["completion_mask"]
            weight = mask.sum().item() / max(total_tokens.item(), 1.0)
            stats["entropy"] = (entropy * mask).sum() / mask.sum().clamp(min=1)
            for key, value in stats.items():
                totals[key] = totals.get(key, 0.0) + float(value) * weight
        params = trainable_parameters(self.model)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, g.max_grad_norm))
        if math.isfinite(loss_value) and math.isfinite(grad_norm):
            self.optimizer.step()
            self._check_parameters_finite(params)
            self.nonfinite_in_a_row = 0
            totals["nonfinite_skipped"] = 0.0
        else:  # numerical guard: skip the step, count it, stop after too many in a row
            self.nonfinite_in_a_row += 1
            self.nonfinite_total += 1
            totals["nonfinite_skipped"] = 1.0
        totals["nonfinite_total"] = float(self.nonfinite_total)
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return loss_value, totals, grad_norm

    def _training_batch(self, rollout: Rollout) -> dict[str, torch.Tensor]:
        input_ids = torch.cat([rollout.prompt_ids, rollout.completion_ids], dim=1)
        attention_mask = torch.cat([rollout.prompt_mask, rollout.completion_mask], dim=1)
        # Left padding shifts every row: positions must count real tokens only, exactly as the
        # sampler did, or training log-probs differ from the sampler's.
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": position_ids,
            "completion_ids": rollout.completion_ids,
            "completion_mask": rollout.completion_mask,
        }

    def _per_token_logps(self, model, batch, with_entropy: bool = False):
        """log π(o_t | q, o_<t) for completion tokens only: logits are kept for the last T+1 positions."""
        T = batch["completion_ids"].size(1)
        logits = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
            position_ids=batch["position_ids"], logits_to_keep=T + 1, use_cache=False,
        ).logits[:, :-1]  # the logit at position t predicts token t + 1
        temperature = self.config.grpo.temperature
        logps = selective_log_probs(logits, batch["completion_ids"], temperature)
        entropy = None
        if with_entropy:  # a logged statistic, not part of the loss: no autograd graph for it
            with torch.no_grad():
                entropy = entropy_from_logits(logits, temperature)
        return logps, entropy

    def _micro_batches(self, batch) -> list[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        """Split the batch into (rows, part) pieces of similar length, each without its dead padding.

        Rows are sorted by completion length and cut into `grpo.micro_batch_size` rows per piece (0:
        an eighth of the batch, at least 8 rows). Each piece keeps only its own columns: from its
        longest prompt's first token (prompts are left-padded) to its longest completion's last.
        Cutting columns that are padding in every row of the piece changes nothing for the real
        tokens (positions come from the mask), and the loss normalisers are the whole batch's, so
        the pieces' gradients sum to the full batch's. Lengths in a batch are skewed (a few long
        completions, many short ones), so this computes roughly the real tokens instead of
        rows × longest.
        """
        n = batch["input_ids"].size(0)
        P = batch["input_ids"].size(1) - batch["completion_ids"].size(1)
        size = self.config.grpo.micro_batch_size or max(8, -(-n // 8))
        lengths = batch["completion_mask"].sum(1)
        order = torch.argsort(lengths, stable=True)
        pad_left = (batch["attention_mask"][:, :P] == 0).sum(1)  # each prompt's left padding
        pieces = []
        for start in range(0, n, size):
            rows = order[start : start + size]
            T = max(int(lengths[rows].max()), 1)
            first = int(pad_left[rows].min())
            part = {key: batch[key][rows, first : P + T] for key in ("input_ids", "attention_mask", "position_ids")}
            part["completion_ids"] = batch["completion_ids"][rows, :T]
            part["completion_mask"] = batch["completion_mask"][rows, :T]
            pieces.append((rows, part))
        return pieces

    def _check_parameters_finite(self, params: list[torch.nn.Parameter]) -> None:
        """Stop when an optimizer step made a weight NaN/inf (e.g. a huge learning rate).

        A finite loss and gradient can still give non-finite weights; those would be checkpointed
        and then crash sampling. One reduction over the trainable weights, one host sync a step.
        """
        if not params or bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            return
        last_good = _latest_checkpoint_or_none(self.run_dir)
        where = f"the last good checkpoint, {last_good}, is intact" if last_good else "no checkpoint was written yet"
        message = (
            f"the optimizer step of step {self.step + 1} made trainable weights NaN/inf (grpo.lr = "
            f"{self.config.grpo.lr}, grpo.max_grad_norm = {self.config.grpo.max_grad_norm}); training stopped "
            f"and nothing was saved from this step. {where}. Try a lower grpo.lr."
        )
        if self.logger is not None:
            self.logger.summary({"stopped": {"step": self.step, "reason": message,
                                             "checkpoint": str(last_good) if last_good else None}})
        raise TrainingStopped(message)

    def _per_token_logps_in_parts(self, model, batch) -> torch.Tensor:
        """`_per_token_logps` over the whole batch (B, T), computed piece by piece (`_micro_batches`)."""
        out = torch.zeros(batch["completion_ids"].shape, dtype=torch.float32, device=batch["completion_ids"].device)
        for rows, part in self._micro_batches(batch):
            out[rows, : part["completion_ids"].size(1)] = self._per_token_logps(model, part)[0]
        return out

    # ================================================================ metrics
    def _reward_metrics(self, per_function: dict[str, list[float]]) -> dict[str, float]:
        out = {}
        for name, values in per_function.items():
            t = torch.tensor(values, dtype=torch.float32)
            out[f"rewards/{name}/mean"] = t.mean().item()
            out[f"rewards/{name}/std"] = t.std().item() if len(values) > 1 else 0.0
        return out

    def _completion_metrics(self, rollout: Rollout, rows: list[dict], accuracy: list[float] | None = None
                            ) -> dict[str, float]:
        """Length and reflection of the training completions (TRL's names + phenomena/)."""
        lengths = rollout.lengths.float()
        truncated = rollout.truncated
        terminated = lengths[~truncated]
        G = self.config.grpo.group_size
        if accuracy is not None:  # accuracy_reward already graded these (it is is_correct per completion)
            correct = torch.tensor([a > 0.5 for a in accuracy])
        else:
            golds = [r["answer"] for r in rows for _ in range(G)]
            correct = torch.tensor([is_correct(c, a) for c, a in zip(rollout.completions, golds)])
        reflections = torch.tensor(
            [count_reflections(c, self.config.eval.lexicon) for c in rollout.completions], dtype=torch.float32
        )
        nan = float("nan")
        return {
            "completions/mean_length": lengths.mean().item(),
            "completions/min_length": lengths.min().item(),
            "completions/max_length": lengths.max().item(),
            "completions/clipped_ratio": truncated.float().mean().item(),
            "completions/mean_terminated_length": terminated.mean().item() if len(terminated) else nan,
            "completions/mean_length_correct": lengths[correct].mean().item() if correct.any() else nan,
            "completions/mean_length_incorrect": lengths[~correct].mean().item() if (~correct).any() else nan,
            "accuracy": correct.float().mean().item(),
            "phenomena/reflection_rate": (reflections > 0).float().mean().item(),
            "phenomena/mean_reflections": reflections.mean().item(),
        }

    # ================================================================ evaluation
    def evaluate(self, step: int | None = None) -> ExamResult:
        """The exam: k samples per question at the eval temperature/top-p (R1's pass@1 protocol)."""
        e, g = self.config.eval, self.config.grpo
        step = self.step if step is None else step
        result = evaluate_model(
            self.model, self.tokenizer, self.exam, k=e.k, temperature=e.temperature, top_p=e.top_p,
            max_new_tokens=e.max_new_tokens or g.max_new_tokens, template=self.config.data.template,
            stop_strings=g.stop_strings, batch_size=e.batch_size, seed=g.seed * 1_000_003 + step,
            lexicon=e.lexicon, forbid_phrases=e.forbid_phrases,
        )
        self.eval_results[step] = result
        if self.logger is not None:
            self.logger.log({f"eval/{k}": v for k, v in result.metrics.items()}, step=step)
            eval_dir = self.run_dir / "eval"
            eval_dir.mkdir(parents=True, exist_ok=True)
            result.per_question.to_csv(eval_dir / f"questions_step{step:06d}.csv", index=False)
            result.samples.to_json(eval_dir / f"samples_step{step:06d}.jsonl", orient="records", lines=True)
            self.logger.log_watched(step, result, self.config.eval.watch)  # issue 17: watched questions
        for cb in self.callbacks:
            cb.on_evaluate(self, step, result)
        return result

    def headline(self, result: ExamResult | dict[str, float]) -> dict[str, float]:
        """The five numbers of summary.json: pass@1, cons@k, pass@k, mean_length, reflection_rate."""
        k = self.config.eval.k
        metrics = result.metrics if isinstance(result, ExamResult) else result
        return {key.format(k=k): metrics.get(key.format(k=k), float("nan")) for key in SUMMARY_KEYS}

    # ================================================================ the loop
    def train(self, resume: bool = False):
        """Run config.grpo.steps steps (continuing from the last checkpoint when resume=True).

        Returns the run's metrics as a pandas DataFrame (grpo_lab.load_run).

        Resuming is exact: a run killed at any moment and resumed gives the same metrics lines
        (none lost, none duplicated) and the same weights as an uninterrupted run with the same
        seed. The checkpoint holds everything the next step depends on (adapter, optimizer,
        scheduler, every RNG, the prompt source, counters, whether its step was evaluated);
        lines logged after it are dropped and redone. With resume=True and no checkpoint yet
        (killed during the step-0 evaluation), the run starts again from step 0.

        A resume may change only config.RESUMABLE_KEYS (grpo.steps may grow) and starts from the
        newest checkpoint that verifies (checkpoint.py). A fresh run moves an earlier run in the
        same directory to RUN/previous/<timestamp>/. The directory is locked for the whole call.
        """
        # One writer per run directory: a second process stops here, before it writes anything.
        held_before = self.run_lock.held
        self.run_lock.acquire()
        try:
            return self._train_locked(resume)
        finally:
            if not held_before:
                self.run_lock.release()

    def _train_locked(self, resume: bool):
        """`train`, with the run directory's lock held."""
        cfg = self.config
        g, tr = cfg.grpo, cfg.tracking
        checkpoint = None
        if resume:
            self._check_resume_config()
            checkpoint = self._load_newest_valid_checkpoint()
            if checkpoint is None:
                warnings.warn(f"no checkpoint in {self.run_dir / 'checkpoints'} yet: starting the run from step 0",
                              stacklevel=3)
            elif g.steps < self.step:
                raise ConfigError(
                    f"grpo.steps = {g.steps} is below the step of the checkpoint being resumed ({checkpoint.name}, "
                    f"step {self.step}): a resume can keep or raise grpo.steps, not lower it"
                )
        else:
            set_aside_previous_run(self.run_dir)  # a fresh run never overwrites an earlier one
        t0 = time.perf_counter()
        self.logger = RunLogger(self.run_dir, cfg.to_dict(), wandb_mode=tr.wandb_mode, project=tr.wandb_project,
                                run_name=cfg.name, resume=resume, wandb_init_timeout=tr.wandb_timeout,
                                wandb_call_timeout=tr.wandb_timeout)
        try:
            if resume:
                # Lines logged after the checkpoint belong to steps about to be redone; so does an
                # eval of the checkpoint's own step that finished after the checkpoint was written.
                self.logger.truncate_after(self.step if checkpoint is not None else -1)
                if checkpoint is not None and self.step not in self._restored_eval:
                    step = self.step
                    self.logger.drop_metrics(lambda r: r.get("step") == step and any(k.startswith("eval/") for k in r))
            self.monitor = HealthMonitor.attach(self.logger, cfg)  # issue 17: run health (grpo_lab/health.py)
            if self._eval_due(self.step) and not self._evaluated(self.step):
                result = self.evaluate()
                if self.step == 0:
                    self.logger.summary({"step0": self.headline(result)})
                    if tr.save_every:  # so that a crash in step 1 does not redo the step-0 exam
                        self.save_checkpoint()
            bar = tqdm(total=g.steps, initial=self.step, desc=cfg.name, disable=not tr.progress)
            while self.step < g.steps:
                metrics = self.training_step()
                metrics["completions/unparsed_ratio"] = unparsed_ratio(self._last_rollout.completions)  # issue 17
                self.step += 1
                self.logger.log(metrics, step=self.step)
                self.monitor.check(self.step, metrics)  # issue 17: warns, writes events.jsonl and wandb
                if tr.log_completions_every and self.step % tr.log_completions_every == 0:
                    self._log_completions()
                for cb in self.callbacks:
                    cb.on_step_end(self, self.step, metrics)
                bar.update(1)
                bar.set_postfix(reward=f"{metrics['reward']:.2f}", acc=f"{metrics['accuracy']:.2f}",
                                len=f"{metrics['completions/mean_length']:.0f}",
                                refl=f"{metrics['phenomena/reflection_rate']:.2f}",
                                health=self.monitor.status())  # issue 17
                if self.nonfinite_in_a_row >= g.max_nonfinite_steps:
                    self._stop_nonfinite()
                if self._eval_due(self.step):
                    self.evaluate()
                # A step that was skipped as non-finite is not checkpointed: the last checkpoint
                # stays the last good state.
                if tr.save_every and self.step % tr.save_every == 0 and self.nonfinite_in_a_row == 0:
                    self.save_checkpoint()
            bar.close()
            rl_seconds = time.perf_counter() - t0
            if self._last_saved_step != self.step and self.nonfinite_in_a_row == 0:
                self.save_checkpoint()  # the final weights are safe before the (long) final exam
            if self.step in self.eval_results:
                final = self.eval_results[self.step].metrics
            elif self.step in self._restored_eval:
                final = self._restored_eval[self.step]
            else:
                final = self.evaluate().metrics
            done = {"final": self.headline(final), "rl_seconds": rl_seconds, "seed": g.seed, "steps": self.step}
            if self.logger.summary_path.exists() and "stopped" in read_summary(self.logger.summary_path):
                done["stopped"] = None  # an earlier attempt stopped; this one finished
            self.logger.summary(done)
            for cb in self.callbacks:
                cb.on_train_end(self)
        except BaseException as exc:
            # Everything written so far (run log, checkpoints) stays on disk; say where it is.
            if hasattr(exc, "add_note") and not isinstance(exc, TrainingStopped):
                exc.add_note(
                    f"grpo-lab: training stopped after step {self.step} of {g.steps} had completed; the run log "
                    f"and the checkpoints in {self.run_dir} are intact (resume: grpo-lab train --resume {self.run_dir})"
                )
            raise
        finally:
            self.logger.close()
        return load_run(self.run_dir)

    def _check_resume_config(self) -> None:
        """Refuse a resume whose config differs from the run's own in a key a resume cannot change.

        The run's config.yaml is what the checkpoints were made with; see config.RESUMABLE_KEYS.
        """
        saved_path = self.run_dir / "config.yaml"
        if not saved_path.exists():
            return
        try:
            saved_dict = yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{saved_path}: unreadable ({type(exc).__name__}: {exc})") from None
        saved = Config.from_dict(saved_dict, source=str(saved_path))
        self.config.check_resume(saved, source=str(saved_path))

    def _load_newest_valid_checkpoint(self) -> Path | None:
        """Load the newest checkpoint that verifies, skipping damaged ones with a warning each.

        A checkpoint with a manifest that verifies but does not load raises (that is not damage but,
        e.g., a different model). One written before manifests existed is skipped if it does not load.
        When checkpoints exist but none is usable, raise rather than silently start from step 0.
        """
        candidates = checkpoints_newest_first(self.run_dir)
        reasons = []
        for checkpoint in candidates:
            try:
                verify_checkpoint(checkpoint)
            except CheckpointCorrupt as exc:
                reasons.append(str(exc))
                warnings.warn(f"skipping checkpoint {checkpoint.name}: {exc}", stacklevel=4)
                continue
            has_manifest = (checkpoint / "manifest.json").exists()
            try:
                self.load_checkpoint(checkpoint)
            except Exception as exc:
                if has_manifest:
                    if hasattr(exc, "add_note"):
                        exc.add_note(f"grpo-lab: while loading checkpoint {checkpoint}")
                    raise
                reason = f"{checkpoint}: could not be loaded ({type(exc).__name__}: {exc})"
                reasons.append(reason)
                warnings.warn(f"skipping checkpoint {checkpoint.name}: {reason}", stacklevel=4)
                continue
            if reasons:
                warnings.warn(f"resuming from {checkpoint} (the newest intact checkpoint)", stacklevel=4)
            return checkpoint
        if candidates:
            raise CheckpointCorrupt(
                f"none of the {len(candidates)} checkpoints in {self.run_dir / 'checkpoints'} is intact: "
                + "; ".join(reasons) + ". Start a fresh run (without --resume) to train from step 0"
            )
        return None

    def _eval_due(self, step: int) -> bool:
        """Whether the exam runs at this step: at step 0 (eval.at_start), then every eval.every steps.

        The last step is evaluated after the loop, in every case (the "final" numbers).
        """
        e = self.config.eval
        if step == 0:
            return e.at_start
        return bool(e.every) and step % e.every == 0 and step < self.config.grpo.steps

    def _evaluated(self, step: int) -> bool:
        return step in self.eval_results or step in self._restored_eval

    def _stop_nonfinite(self) -> None:
        last_good = _latest_checkpoint_or_none(self.run_dir)
        where = f"the last good checkpoint, {last_good}, is intact" if last_good else "no checkpoint was written yet"
        message = (
            f"{self.nonfinite_in_a_row} steps in a row (up to step {self.step}) had a NaN/inf loss or gradient and "
            f"were skipped (grpo.max_nonfinite_steps = {self.config.grpo.max_nonfinite_steps}); training stopped. "
            f"{where}. Try a lower grpo.lr or grpo.max_grad_norm, or check the reward functions."
        )
        self.logger.summary({"stopped": {"step": self.step, "reason": message,
                                         "checkpoint": str(last_good) if last_good else None}})
        raise TrainingStopped(message)

    def _log_completions(self) -> None:
        rollout, rewards = self._last_rollout, self._last_rewards
        G = self.config.grpo.group_size
        rows = [
            {"prompt": rollout.prompts[i], "completion": rollout.completions[i], "reward": float(rewards[i]),
             "length": int(rollout.lengths[i])}
            for i in range(min(G, len(rollout)))
        ]
        self.logger.log_completions(self.step, rows)

    def _check_prompt_lengths(self, prompts: list[str], source: str = "prompts") -> None:
        """Prompts that leave no room for max_new_tokens in the context window are an error.

        The limit is grpo.max_prompt_length when set, else the model's context window
        (max_position_embeddings) minus grpo.max_new_tokens. The message names the source (config
        key and file), the prompt's index and its start, and the settings that decide the limit.
        """
        g = self.config.grpo
        context = getattr(getattr(self.model, "config", None), "max_position_embeddings", None)
        if g.max_prompt_length:
            room, why = g.max_prompt_length, f"grpo.max_prompt_length = {g.max_prompt_length}"
        elif context is not None:
            room, why = context - g.max_new_tokens, f"context window {context} - grpo.max_new_tokens {g.max_new_tokens}"
        else:
            return
        if room < 1:
            raise ValueError(f"no room for a prompt: {why} leaves {room} tokens; lower grpo.max_new_tokens")
        lengths = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"] if prompts else []
        for i, (p, ids) in enumerate(zip(prompts, lengths)):
            if len(ids) > room:
                raise ValueError(
                    f"{source}: prompt {i} has {len(ids)} tokens, more than the {room} that fit ({why}): "
                    f"{p[:80]!r}…"
                )

    # ================================================================ checkpoints
    def save_checkpoint(self) -> Path:
        """Adapter (or full weights), optimizer, scheduler, RNG states and step, written atomically.

        Everything goes to a temporary directory first, which is renamed into place when complete:
        a checkpoint directory either exists whole or not at all, whenever the process dies.
        """
        params = trainable_parameters(self.model)
        if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            raise TrainingStopped(f"not saving step {self.step}: trainable weights are NaN/inf")
        root = self.run_dir / "checkpoints"
        final = root / f"step-{self.step:06d}"
        tmp = root / f".tmp-step-{self.step:06d}"
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            self.model.save_pretrained(tmp, safe_serialization=True)
            torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
            rng = {
                "scheduler": self.scheduler.state_dict(),
                "torch": torch.get_rng_state(),
                "generator": self.generator.get_state(),
            }
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                rng["cuda"] = torch.cuda.get_rng_state_all()
            torch.save(rng, tmp / "rng_state.pt")
            from grpo_lab import rewards

            evaluated = self.eval_results.get(self.step)
            state = {
                "step": self.step,
                "num_tokens": self.num_tokens,
                "nonfinite_in_a_row": self.nonfinite_in_a_row,
                "nonfinite_total": self.nonfinite_total,
                "python_random": _jsonable_random_state(random.getstate()),
                "numpy_random": _jsonable_numpy_state(np.random.get_state()),
                "coin_flip_random": _jsonable_random_state(rewards._COIN_FLIP_RNG.getstate()),
                "prompts": _jsonable(self.prompts.state_dict()),
                # The exam of this step, if it ran before the checkpoint: not redone on resume.
                "eval_metrics": evaluated.metrics if evaluated is not None else self._restored_eval.get(self.step),
            }
            with open(tmp / "trainer_state.json", "w", encoding="utf-8") as f:
                f.write(json.dumps(state))
                f.flush()
                os.fsync(f.fileno())
            write_manifest(tmp)  # last: sizes and hashes of the complete files, checked on resume
        except OSError as exc:  # e.g. a full disk: say which checkpoint, what is intact, how to go on
            previous = _latest_checkpoint_or_none(self.run_dir)
            intact = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
            raise OSError(f"writing checkpoint {final.name} in {root} failed ({exc}); {intact}. Free space "
                          f"and resume: grpo-lab train --resume {self.run_dir}") from exc
        if final.exists():  # never delete the only copy before its replacement is in place
            old = root / f".old-step-{self.step:06d}"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)  # a checkpoint directory either exists whole or not at all
        self._last_saved_step = self.step
        for stale in sorted(root.glob("step-*"))[:-2]:  # keep the last two
            shutil.rmtree(stale, ignore_errors=True)
        return final

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore everything `save_checkpoint` wrote, so the next step is the one the run would take."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        from grpo_lab import rewards

        path = Path(path)
        state = json.loads((path / "trainer_state.json").read_text())
        if self.config.model.use_lora:
            set_peft_model_state_dict(self.model, load_file(str(path / "adapter_model.safetensors")))
        else:
            weights = {}
            for shard in sorted(path.glob("*.safetensors")):  # model.safetensors, or shards of a big model
                weights.update(load_file(str(shard)))
            self.model.load_state_dict(weights, strict=False)
        self.optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
        rng = torch.load(path / "rng_state.pt", weights_only=True)
        self.scheduler.load_state_dict(rng["scheduler"])
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["generator"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.step = int(state["step"])
        self.num_tokens = int(state["num_tokens"])
        self.nonfinite_in_a_row = int(state["nonfinite_in_a_row"])
        self.nonfinite_total = int(state.get("nonfinite_total", 0))
        random.setstate(_random_state_from_json(state["python_random"]))
        if "numpy_random" in state:
            np.random.set_state(_numpy_state_from_json(state["numpy_random"]))
        rewards._COIN_FLIP_RNG.setstate(_random_state_from_json(state["coin_flip_random"]))
        self.prompts.load_state_dict(state["prompts"])
        self.eval_results = {}
        self._restored_eval = {self.step: state["eval_metrics"]} if state.get("eval_metrics") else {}
        self._last_saved_step = self.step


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The newest intact checkpoint of a run (half-written and damaged ones are skipped, with a warning)."""
    found = find_valid_checkpoint(run_dir)
    if found is None:
        raise FileNotFoundError(f"no intact checkpoint in {Path(run_dir) / 'checkpoints'}")
    return found


def _latest_checkpoint_or_none(run_dir: str | Path) -> Path | None:
    return find_valid_checkpoint(run_dir, warn=False)


class _FunctionCallback(Callback):
    def __init__(self, fn: Callable[[GRPOTrainer, int, dict], Any]):
        self.fn = fn

    def on_step_end(self, trainer, step, metrics):
        self.fn(trainer, step, metrics)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _jsonable_random_state(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _random_state_from_json(state: list) -> tuple:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def _jsonable_numpy_state(state: tuple) -> list:
    name, keys, pos, has_gauss, cached = state
    return [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]


def _numpy_state_from_json(state: list) -> tuple:
    name, keys, pos, has_gauss, cached = state
    return (name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return [_jsonable(x) for x in obj]
    if isinstance(obj, list):
        return [_jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    return obj


def run_or_load(config: Config, **trainer_kwargs):
    """Train the config's run, or load it when its run directory already holds a finished run.

    Notebooks use this so that one run (e.g. notebook 04's) serves the notebooks that analyse it,
    and re-executing a notebook does not retrain. Returns the run's DataFrame (grpo_lab.load_run).
    A finished run is reused only if it was trained with the same recipe (every config value
    except `tracking`, which only says where and how to log). A finished run with another recipe
    raises instead of being overwritten or silently reused: delete it or pick another run_dir.
    """
    run_dir = Path(trainer_kwargs.get("run_dir") or config.run_dir)
    summary = run_dir / "summary.json"
    if summary.exists():
        done = read_summary(summary)
        if done.get("final"):
            saved_dict = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
            # Through Config so that keys added since the run was made read as their defaults.
            saved = _recipe(Config.from_dict(saved_dict, source=str(run_dir / "config.yaml")).to_dict())
            wanted = _recipe(config.to_dict())
            if saved != wanted:
                changed = sorted(
                    f"{group}.{key}: {saved.get(group, {}).get(key)!r} (run) vs {value!r} (now)"
                    for group, values in wanted.items() if isinstance(values, dict)
                    for key, value in values.items() if saved.get(group, {}).get(key) != value
                ) or ["(top-level values differ)"]
                raise FileExistsError(
                    f"{run_dir} holds a finished run with a different config: " + "; ".join(changed)
                    + ". Delete that directory to retrain, or set tracking.run_dir to another one."
                )
            return load_run(run_dir)
    return GRPOTrainer(config, **trainer_kwargs).train()


def _recipe(config: dict) -> dict:
    """The parts of a config dict that change what a run learns (everything but `tracking`)."""
    return {k: v for k, v in _jsonable(config).items() if k != "tracking"}
