"""LoRA GRPO on a Hugging Face causal LM, readable top to bottom (CleanRL style).

`GRPOTrainer.training_step` is one iteration of DeepSeekMath's Algorithm 1 (Shao et al. 2024),
with the paper's names (docs/reference.md §1–§3):

    sample a batch of questions q, and G outputs o_i ~ π_old(·|q) for each       (the sampler)
    rewards r_i from the rule-based reward functions                              (rewards.py)
    group-relative advantages Â_i = (r_i − mean(r)) / std(r)                      (grpo.py)
    log-probs of π_ref (adapters off) and, if μ > 1, of π_old, without gradient  (logprobs.py)
    for μ iterations: GRPO loss → backward → clip → AdamW step                  (grpo.py)
    metrics under TRL's names                                                     (metrics.py)

`train` is the loop around it: the exam at step 0 and every `eval.every` steps (exam.py),
checkpoints of the weights and the run state (checkpoint.py, run_state.py), a run log plus wandb
(tracking.py), callbacks for a notebook's live view, and a progress bar.
"""

from __future__ import annotations

import math
import os
import random
import resource
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.profiler import record_function
from tqdm.auto import tqdm

from grpo_lab.checkpoint import (
    find_valid_checkpoint,
    latest_checkpoint,  # noqa: F401  (part of this module's API: grpo_lab.trainer.latest_checkpoint)
    load_checkpoint,
    load_newest_valid_checkpoint,
    save_checkpoint,
)
from grpo_lab.config import Config, ConfigError
from grpo_lab.cpu import fastest_threads, keep_freed_memory, machine_record, thread_candidates
from grpo_lab.data import PromptSource, format_prompt, load_exam
from grpo_lab.evaluate import ExamResult
from grpo_lab.exam import run_exam
from grpo_lab.grpo import compute_advantages, grpo_loss
from grpo_lab.health import HealthMonitor
from grpo_lab.lean_forward import use_lean as use_lean_forward
from grpo_lab.logprobs import micro_batches, per_token_logps, per_token_logps_in_parts, training_batch
from grpo_lab.metrics import completion_metrics, reward_metrics
from grpo_lab.models import ReferencePolicy, add_lora, load_model_and_tokenizer, trainable_parameters
from grpo_lab.rewards import check_reward_functions, compute_rewards, get_reward_function, is_correct
from grpo_lab.rollout import Rollout
from grpo_lab.run_state import RunState
from grpo_lab.rundir import RunDirectoryLock, check_resume_config, set_aside_previous_run
from grpo_lab.samplers import make_sampler
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
    `config.rewards.functions` with `config.rewards.weights`. Functions passed here take
    `reward_weights` (default 1.0 each, as TRL's `reward_weights=None`).
    """

    def __init__(
        self,
        config: Config,
        model=None,
        tokenizer=None,
        reward_funcs: Sequence[Callable] | None = None,
        callbacks: Sequence[Callback | Callable] = (),
        run_dir: str | Path | None = None,
        reward_weights: Sequence[float] | None = None,
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
        if self.device.type == "cpu" and g.keep_freed_memory:
            keep_freed_memory()  # no page faults on every step's temporaries (cpu.py); numbers unchanged
        # grpo.sampler: the Hugging Face forward (the readable reference), the lean decoder or vLLM.
        self.sampler = make_sampler(cfg, model)
        self._lean = False  # grpo.train_forward's choice, decided at each step (the model may change)
        self._threads: int | None = None  # torch threads on CPU (grpo.cpu_threads; see choose_cpu_threads)
        self.reference = ReferencePolicy(model, cfg.model.use_lora, needed=g.beta != 0.0)

        if reward_funcs is None:  # the config's functions and weights (the config checked they pair up)
            self.reward_funcs = [get_reward_function(name, seed=g.seed) for name in cfg.rewards.functions]
            self.reward_weights = list(cfg.rewards.weights)
        else:
            self.reward_funcs = list(reward_funcs)
            self.reward_weights = [1.0] * len(self.reward_funcs) if reward_weights is None else list(reward_weights)
            if len(self.reward_weights) != len(self.reward_funcs):
                raise ValueError(f"reward_weights has {len(self.reward_weights)} weights for "
                                 f"{len(self.reward_funcs)} reward functions; pass one weight per function")
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
        # Everything the next step depends on besides the weights: saved and restored as one.
        self.state = RunState(self.optimizer, self.scheduler, self.generator, self.prompts, self.reward_funcs)
        # Anything with the Callback hooks is a callback (e.g. plots.LivePlot); a plain function is on_step_end.
        self.callbacks = [c if hasattr(c, "on_step_end") else _FunctionCallback(c) for c in callbacks]
        self.run_dir = Path(run_dir) if run_dir is not None else config.run_dir
        # Held for the whole of train(); a caller that already holds it (the CLI, from before the
        # model is loaded) may put its own lock here, and train() then keeps it held.
        self.run_lock = RunDirectoryLock(self.run_dir)
        self.eval_results: dict[int, ExamResult] = {}
        # Eval metrics restored from a checkpoint whose step had been evaluated before it was saved.
        self._restored_eval: dict[int, dict[str, float]] = {}
        self._last_saved_step: int | None = None
        self.logger: RunLogger | None = None
        self.monitor: HealthMonitor | None = None  # the run-health checks, attached when train() starts

    # The run state's counters, readable as the trainer's own (trainer.step, ...).
    step = property(lambda self: self.state.step, lambda self, v: setattr(self.state, "step", v))
    num_tokens = property(lambda self: self.state.num_tokens)
    nonfinite_in_a_row = property(lambda self: self.state.nonfinite_in_a_row)
    nonfinite_total = property(lambda self: self.state.nonfinite_total)

    # ================================================================== the GRPO step
    def training_step(self) -> dict[str, float]:
        """One iteration of DeepSeekMath's Algorithm 1: sample, reward, advantages, μ policy updates."""
        cfg, g = self.config, self.config.grpo
        G = g.group_size
        t_start = time.perf_counter()

        # (The sampling, log-prob and update phases are torch.profiler ranges, "grpo/rollout" etc.: they
        # name the phases in a profiler trace and cost ~1 µs without one; benchmarks/where_time_goes.py.)
        # 1. A batch of questions q, and G outputs o_i ~ π_old(·|q) each (π_old is the current policy).
        rows = self.prompts.next(g.prompts_per_step)
        prompts = [format_prompt(str(r["question"]), cfg.data.template, self.tokenizer) for r in rows]
        self._check_prompt_lengths(prompts, source=f"data.train ({cfg.data.train})")
        with record_function("grpo/rollout"):
            rollout = self.sampler.generate(
                self.model, self.tokenizer, prompts, num_samples=G, max_new_tokens=g.max_new_tokens,
                temperature=g.temperature, top_p=g.top_p, stop_strings=g.stop_strings, generator=self.generator,
            )
        t_rollout = time.perf_counter()

        # 2. Rewards r_i by rule; every dataset column is passed to the reward functions, repeated G times.
        columns = {key: [r.get(key) for r in rows for _ in range(G)]
                   for key in dict.fromkeys(k for r in rows for k in r if k != "question")}
        rewards, per_function = compute_rewards(
            self.reward_funcs, self.reward_weights, rollout.prompts, rollout.completions, columns
        )
        rewards = rewards.to(self.device)

        # 3. Group-relative advantages Â_i = (r_i − mean(r)) / std(r) (DeepSeekMath Eq. 3; Dr. GRPO drops the std).
        advantages, reward_stats = compute_advantages(rewards, G, g.scale_rewards, g.std_eps)

        # 4. log π_ref (for the KL term) and log π_old (for the ratio), without gradient. With μ = 1,
        #    π_old = π_θ at the update, so the ratio is exactly 1 and no extra pass is needed.
        batch = training_batch(rollout)
        self._lean = use_lean_forward(self.model, g.train_forward)  # grpo.train_forward: hf | lean | auto
        ref_logps = old_logps = None
        with record_function("grpo/logprobs"):
            if g.beta != 0.0:
                with self.reference.active() as reference_model:
                    ref_logps = per_token_logps_in_parts(reference_model, batch, g.temperature, g.micro_batch_size,
                                                         self._lean)
            if g.num_iterations > 1:
                old_logps = per_token_logps_in_parts(self.model, batch, g.temperature, g.micro_batch_size, self._lean)
        t_scoring = time.perf_counter()

        # 5. μ times: maximise the GRPO objective (DeepSeekMath Eq. 21) on this batch.
        self.model.train()
        params = trainable_parameters(self.model)
        with record_function("grpo/update"):
            for _ in range(g.num_iterations):
                loss, stats = self.loss_and_backward(batch, advantages, old_logps, ref_logps)
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, g.max_grad_norm))
                stats["nonfinite_skipped"] = float(not self._optimizer_step(loss, grad_norm, params))
                self.optimizer.zero_grad(set_to_none=True)
                self.scheduler.step()
        t_update = time.perf_counter()

        # 6. Metrics, under TRL's names.
        self.state.num_tokens += int(batch["attention_mask"].sum().item())
        correct = self._correct(rollout, rows, per_function.get("accuracy_reward"))
        metrics = {
            **reward_stats,
            **reward_metrics(per_function),
            **completion_metrics(rollout, correct, cfg.eval.lexicon),
            **stats,
            "nonfinite_total": float(self.state.nonfinite_total),
            "loss": loss,
            "grad_norm": grad_norm,
            "learning_rate": self.scheduler.get_last_lr()[0],
            "num_tokens": float(self.state.num_tokens),
            "step_time": t_update - t_start,
            "time/rollout": t_rollout - t_start,
            "time/scoring": t_scoring - t_rollout,
            "time/update": t_update - t_scoring,
        }
        if self._threads is not None:
            metrics["time/threads"] = float(self._threads)
        self._last_rollout, self._last_rewards = rollout, rewards
        return metrics

    def _machine_summary(self, resume: bool) -> dict[str, Any]:
        """summary.json's "machine": what bitwise equality needs (torch, the CPU, torch's kernel level).

        A resumed run keeps the machine it started on; if it resumes on another one (other torch or
        kernels), that one is added as "machine_on_resume", since the run's bits then mix the two.
        """
        machine = machine_record(str(self.device))
        path = self.logger.summary_path
        started = read_summary(path).get("machine") if resume and path.exists() else None
        if not isinstance(started, dict) or started == machine:
            return {"machine": machine}
        return {"machine": started, "machine_on_resume": machine}

    def loss_and_backward(self, batch, advantages, old_logps, ref_logps) -> tuple[float, dict[str, float]]:
        """The GRPO loss of the batch and its gradient, accumulated over pieces of similar length.

        Each piece is a forward of π_θ (`per_token_logps`), the loss (`grpo.grpo_loss`, with the
        whole batch's normalisers so the pieces sum to the full-batch loss) and its backward.
        Returns the loss and the token-weighted statistics (clip ratios, KL, entropy).
        """
        g = self.config.grpo
        total_tokens = batch["completion_mask"].sum()
        stats: dict[str, float] = {}
        loss_value = 0.0
        for rows, part in micro_batches(batch, g.micro_batch_size):
            T = part["completion_ids"].size(1)
            logps, entropy = per_token_logps(self.model, part, g.temperature, with_entropy=True,
                                             lean=self._lean)
            old = logps.detach() if old_logps is None else old_logps[rows, :T]
            loss, part_stats = grpo_loss(
                logps, old, advantages[rows], part["completion_mask"],
                loss_type=g.loss_type, epsilon=g.epsilon, epsilon_high=g.epsilon_high, beta=g.beta,
                ref_per_token_logps=None if ref_logps is None else ref_logps[rows, :T],
                max_completion_length=g.max_new_tokens, num_items_in_batch=total_tokens,
                num_sequences=batch["input_ids"].size(0),
            )
            loss.backward()
            loss_value += loss.item()
            mask = part["completion_mask"]
            weight = mask.sum().item() / max(total_tokens.item(), 1.0)
            part_stats["entropy"] = (entropy * mask).sum() / mask.sum().clamp(min=1)
            for key, value in part_stats.items():
                stats[key] = stats.get(key, 0.0) + float(value) * weight
        return loss_value, stats

    def _optimizer_step(self, loss: float, grad_norm: float, params: list[torch.nn.Parameter]) -> bool:
        """AdamW step, unless the loss or gradient is NaN/inf: then skip and count it. Returns whether it stepped."""
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            self.state.nonfinite_in_a_row += 1
            self.state.nonfinite_total += 1
            return False
        self.optimizer.step()
        self._check_parameters_finite(params)
        self.state.nonfinite_in_a_row = 0
        return True

    def _correct(self, rollout: Rollout, rows: list[dict], accuracy: list[float] | None) -> list[bool]:
        """Which completions are right: accuracy_reward's grades when it ran, else graded here."""
        if accuracy is not None:
            return [a > 0.5 for a in accuracy]
        golds = [r["answer"] for r in rows for _ in range(self.config.grpo.group_size)]
        return [is_correct(c, a) for c, a in zip(rollout.completions, golds)]

    def _check_parameters_finite(self, params: list[torch.nn.Parameter]) -> None:
        """Stop when an optimizer step made a weight NaN/inf (e.g. a huge learning rate).

        A finite loss and gradient can still give non-finite weights; those would be checkpointed
        and then crash sampling. One reduction over the trainable weights, one host sync a step.
        """
        if not params or bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            return
        if self.monitor is not None:  # the nonfinite alert: events.jsonl, wandb and the report, before the stop
            self.monitor.check(self.step + 1, {"nonfinite_weights": 1.0})
        half = sorted({str(p.dtype).removeprefix("torch.") for p in params} & {"float16", "bfloat16"})
        advice = (f"The trainable weights are {'/'.join(half)}: AdamW's eps (1e-8) and small updates vanish "
                  "in 16 bits (eps is 0 in float16). Train them in float32: model.dtype=float32, or LoRA "
                  "(model.use_lora=true keeps the adapters in float32 under a 16-bit base)."
                  if half else "Try a lower grpo.lr.")
        self._stop(
            f"the optimizer step of step {self.step + 1} made trainable weights NaN/inf (grpo.lr = "
            f"{self.config.grpo.lr}, grpo.max_grad_norm = {self.config.grpo.max_grad_norm}); training stopped "
            "and nothing was saved from this step. {where}. " + advice
        )

    def _stop(self, message: str) -> None:
        """Stop training on purpose: record why in summary.json, then raise TrainingStopped."""
        last_good = find_valid_checkpoint(self.run_dir, warn=False)
        where = f"the last good checkpoint, {last_good}, is intact" if last_good else "no checkpoint was written yet"
        message = message.replace("{where}", where)
        if self.logger is not None:
            self.logger.summary({"stopped": {"step": self.step, "reason": message,
                                             "checkpoint": str(last_good) if last_good else None}})
        raise TrainingStopped(message)

    # ================================================================ CPU threads
    def choose_cpu_threads(self) -> None:
        """On CPU, set torch's thread count: grpo.cpu_threads, or (0) the fastest by timing now.

        The best count depends on what else runs on the machine (cpu.py), so with 0 it is timed
        on a small forward of the policy (8 rows × 48 tokens, no gradient) at the start of
        training and after every exam, and logged as `time/threads`. OMP_NUM_THREADS, when set,
        is the user's choice and is left alone. On the micro model the numbers computed do not
        depend on it (cpu.fastest_threads says when they might).
        """
        g = self.config.grpo
        if self.device.type != "cpu" or "OMP_NUM_THREADS" in os.environ:
            return
        if g.cpu_threads:
            torch.set_num_threads(g.cpu_threads)
            self._threads = g.cpu_threads
            return
        vocab = self.model.get_input_embeddings().num_embeddings
        ids = (torch.arange(8 * 48, device=self.device).view(8, 48) * 7919) % vocab  # fixed, no RNG drawn
        ones = torch.ones_like(ids)
        probe_batch = {"input_ids": ids, "attention_mask": ones, "position_ids": torch.arange(48).expand(8, 48),
                       "completion_ids": ids[:, -16:], "completion_mask": ones[:, -16:]}
        lean = use_lean_forward(self.model, g.train_forward)
        was_training = self.model.training
        self.model.eval()  # no LoRA dropout: the probe draws nothing from the training's random stream

        def probe():
            with torch.no_grad():
                per_token_logps(self.model, probe_batch, 1.0, lean=lean)

        try:
            self._threads, seconds = fastest_threads(probe, thread_candidates())
        finally:
            self.model.train(was_training)
        if self.logger is not None:
            self.logger.summary({"cpu_threads": {"chosen": self._threads,
                                                 "probe_ms": {str(n): round(1e3 * t, 2) for n, t in seconds.items()}}})

    # ================================================================ evaluation
    def evaluate(self, step: int | None = None) -> ExamResult:
        """The exam of `step` (exam.run_exam: the same function and seed as `grpo-lab eval`)."""
        step = self.step if step is None else step
        result = run_exam(self.model, self.tokenizer, self.config, step, exam=self.exam, sampler=self.sampler)
        self.eval_results[step] = result
        if self.logger is not None:
            self.logger.log({f"eval/{k}": v for k, v in result.metrics.items()}, step=step)
            eval_dir = self.run_dir / "eval"
            eval_dir.mkdir(parents=True, exist_ok=True)
            result.per_question.to_csv(eval_dir / f"questions_step{step:06d}.csv", index=False)
            result.samples.to_json(eval_dir / f"samples_step{step:06d}.jsonl", orient="records", lines=True)
            self.logger.log_watched(step, result, self.config.eval.watch)  # a few questions' answers, every exam
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
        seed. The checkpoint holds the weights and the run state (run_state.RunState); lines
        logged after it are dropped and redone. With resume=True and no checkpoint yet (killed
        during the step-0 evaluation), the run starts again from step 0.

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
        checkpoint = self._resume() if resume else None
        if not resume:
            set_aside_previous_run(self.run_dir)  # a fresh run never overwrites an earlier one
        t0 = time.perf_counter()
        self.logger = RunLogger(self.run_dir, cfg.to_dict(), wandb_mode=tr.wandb_mode, project=tr.wandb_project,
                                run_name=cfg.name, resume=resume, wandb_init_timeout=tr.wandb_timeout,
                                wandb_call_timeout=tr.wandb_timeout)
        self.logger.summary({"sampler": {"name": self.sampler.name, "reason": self.sampler.reason},
                             **self._machine_summary(resume)})
        try:
            if resume:
                # Lines logged after the checkpoint belong to steps about to be redone; so does an
                # eval of the checkpoint's own step that finished after the checkpoint was written.
                self.logger.truncate_after(self.step if checkpoint is not None else -1)
                if checkpoint is not None and self.step not in self._restored_eval:
                    step = self.step
                    self.logger.drop_metrics(lambda r: r.get("step") == step and any(k.startswith("eval/") for k in r))
            # Run health (health.py): named checks on every step's metrics; after the resume truncation,
            # so that the logged steps are replayed silently and no alert is raised twice.
            self.monitor = HealthMonitor.attach(self.logger, cfg)
            self.choose_cpu_threads()
            exam_seconds = math.nan  # the first exam's time, for the projection after two steps
            if self._eval_due(self.step) and not self._evaluated(self.step):
                t_exam = time.perf_counter()
                result = self.evaluate()
                exam_seconds = time.perf_counter() - t_exam
                if self.step == 0:
                    self.logger.summary({"step0": self.headline(result)})
                    if tr.save_every:  # so that a crash in step 1 does not redo the step-0 exam
                        self.save_checkpoint()
            bar = tqdm(total=g.steps, initial=self.step, desc=cfg.name, disable=not tr.progress)
            first_step, t_steps = self.step, time.perf_counter()
            while self.step < g.steps:
                metrics = self.training_step()
                self.step += 1
                self.logger.log(metrics, step=self.step)
                self.monitor.check(self.step, metrics)  # warns once per check; events.jsonl and wandb
                if self.step == first_step + 2:  # the run's own probe: two steps and the first exam, projected
                    self._project(time.perf_counter() - t_steps, exam_seconds, bar if tr.progress else None)
                if tr.log_completions_every and self.step % tr.log_completions_every == 0:
                    self._log_completions()
                for cb in self.callbacks:
                    cb.on_step_end(self, self.step, metrics)
                bar.update(1)
                bar.set_postfix(reward=f"{metrics['reward']:.2f}", acc=f"{metrics['accuracy']:.2f}",
                                len=f"{metrics['completions/mean_length']:.0f}",
                                refl=f"{metrics['phenomena/reflection_rate']:.2f}", health=self.monitor.status())
                if self.nonfinite_in_a_row >= g.max_nonfinite_steps:
                    self._stop(
                        f"{self.nonfinite_in_a_row} steps in a row (up to step {self.step}) had a NaN/inf loss or "
                        f"gradient and were skipped (grpo.max_nonfinite_steps = {g.max_nonfinite_steps}); training "
                        "stopped. {where}. Try a lower grpo.lr or grpo.max_grad_norm, or check the reward functions."
                    )
                if self._eval_due(self.step):
                    self.evaluate()
                    self.choose_cpu_threads()  # the machine's load may have changed since the last choice
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

    def _resume(self) -> Path | None:
        """Check the config against the run's, then load the newest intact checkpoint (None: none yet)."""
        check_resume_config(self.config, self.run_dir)
        checkpoint = load_newest_valid_checkpoint(self.run_dir, self.load_checkpoint)
        if checkpoint is None:
            warnings.warn(f"no checkpoint in {self.run_dir / 'checkpoints'} yet: starting the run from step 0",
                          stacklevel=4)
        elif self.config.grpo.steps < self.step:
            raise ConfigError(
                f"grpo.steps = {self.config.grpo.steps} is below the step of the checkpoint being resumed "
                f"({checkpoint.name}, step {self.step}): a resume can keep or raise grpo.steps, not lower it"
            )
        return checkpoint

    def _project(self, two_steps_seconds: float, exam_seconds: float, bar) -> None:
        """Project the rest of the run from its first two steps and first exam; log it (summary "projection").

        A lower bound when completions grow longer as training goes on (R1-Zero's length growth).
        """
        g = self.config.grpo
        step_s = two_steps_seconds / 2
        exams_left = sum(self._eval_due(s) for s in range(self.step + 1, g.steps)) + 1  # + the final exam
        exam_s = exam_seconds if math.isfinite(exam_seconds) else 0.0
        left = (g.steps - self.step) * step_s + exams_left * exam_s
        projection = {"step_seconds": step_s, "exam_seconds": exam_seconds, "steps_left": g.steps - self.step,
                      "exams_left": exams_left, "seconds_left": left, "peak_memory_bytes": peak_memory_bytes(self.device)}
        self.logger.summary({"projection": projection})
        exam = f"; exam {exam_seconds:.1f} s × {exams_left}" if math.isfinite(exam_seconds) else ""
        line = (f"≈ {left / 60:.1f} min left: {g.steps - self.step} steps × {step_s:.2f} s{exam}; peak memory "
                f"{projection['peak_memory_bytes'] / 2**20:.0f} MiB (from the first two steps; longer answers take longer)")
        if bar is not None:
            bar.write(line)

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
        """The weights and the run state, written atomically (checkpoint.save_checkpoint); never NaN weights."""
        params = trainable_parameters(self.model)
        if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            raise TrainingStopped(f"not saving step {self.step}: trainable weights are NaN/inf")
        evaluated = self.eval_results.get(self.step)
        eval_metrics = evaluated.metrics if evaluated is not None else self._restored_eval.get(self.step)
        path = save_checkpoint(self.run_dir, self.step, self.model, self.state, eval_metrics)
        self._last_saved_step = self.step
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore what `save_checkpoint` wrote, so the next step is the one the run would take."""
        eval_metrics = load_checkpoint(path, self.model, self.state, self.config.model.use_lora)
        self.eval_results = {}
        self._restored_eval = {self.step: eval_metrics} if eval_metrics else {}
        self._last_saved_step = self.step


class _FunctionCallback(Callback):
    def __init__(self, fn: Callable[[GRPOTrainer, int, dict], Any]):
        self.fn = fn

    def on_step_end(self, trainer, step, metrics):
        self.fn(trainer, step, metrics)


def peak_memory_bytes(device) -> int:
    """Peak GPU memory allocated on CUDA; else the process's peak resident memory."""
    if getattr(device, "type", str(device)) == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
