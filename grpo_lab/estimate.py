"""How long will this run take here? A short probe of the real recipe on this machine.

    from grpo_lab.estimate import estimate_run
    print(estimate_run(cfg))      # ≈ 17 min here: 500 steps × 1.9 s + 11 exams × 5.2 s + load 0.4 s ...

A time written in a notebook's text is right on one machine only (the same recipe takes ~3.4 min
on one AVX-512 CPU and ~9.4 min on a 2-core AVX2 laptop). So the probe runs the recipe itself for
`probe_steps` RL steps and one exam, in a temporary run directory with logging off, and projects:

    total = model load + steps × step time + exams × exam time

It measures; it does not guess. Its limits, said plainly: steps and exams late in a run cost more
when completions grow (they do in R1-Zero), so the projection from the first steps is a lower
bound, unless `reference_run` names a finished run of the same recipe, whose logged step times
give the growth factor (mean step time over its first `probe_steps` steps' mean).

The probe cannot change the real run: it writes only to its own temporary directory, and every
RNG it touches (torch, numpy, random, the sampling generator, the coin-flip reward) is seeded
again by the real `GRPOTrainer` when it is built, which is what makes a run reproducible anyway
(tests/test_notebook_estimate.py checks a run after a probe against one without).
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from grpo_lab.config import Config


@dataclass(frozen=True)
class Estimate:
    """A run's projected cost on this machine, from a probe of `probe_steps` steps and one exam.

    step_seconds: one RL step (the last probe step; the first pays one-off warm-up costs).
    exam_seconds: one exam (the probe's final exam, on the barely trained policy).
    load_seconds: building the trainer (model, data, LoRA).
    peak_memory_bytes: peak GPU memory allocated on CUDA; else the process's peak resident memory.
    steps, exams: what the real run will do (config.grpo.steps; exams at step 0, every eval.every, the end).
    growth: factor applied to step and exam time (1.0 without a reference run).
    total_seconds: load + steps × step × growth + exams × exam × growth.
    probe_seconds: what the probe itself took.
    """

    step_seconds: float
    exam_seconds: float
    load_seconds: float
    peak_memory_bytes: int
    steps: int
    exams: int
    growth: float
    total_seconds: float
    probe_seconds: float

    def __str__(self) -> str:
        growth = f" (× {self.growth:.2f}, the reference run's growth)" if self.growth != 1.0 else ""
        return (
            f"≈ {self.total_seconds / 60:.1f} min on this machine: {self.steps} steps × {self.step_seconds:.2f} s"
            f" + {self.exams} exams × {self.exam_seconds:.1f} s{growth} + loading {self.load_seconds:.1f} s;"
            f" peak memory {self.peak_memory_bytes / 2**20:.0f} MiB (probe took {self.probe_seconds:.0f} s)"
            + ("" if growth else "; a lower bound if completions grow (no reference run to scale by)")
        )


def count_exams(config: Config) -> int:
    """Exams the run will sit: step 0 (eval.at_start), every eval.every steps, and the final step."""
    steps, every = config.grpo.steps, config.eval.every
    due = {s for s in range(every, steps + 1, every)} if every > 0 else set()
    if config.eval.at_start:
        due.add(0)
    due.add(steps)
    return len(due)


def _growth(reference_run: str | Path, probe_steps: int) -> float:
    from grpo_lab.tracking import load_run

    times = load_run(reference_run).get("step_time")
    if times is None or times.dropna().size <= probe_steps:
        raise ValueError(f"{reference_run}: no step_time logged for more than {probe_steps} steps; "
                         "pass a finished run of the same recipe, or reference_run=None")
    times = times.dropna()
    early = float(times.iloc[:probe_steps].mean())
    return float(times.mean()) / early if early > 0 else 1.0


def estimate_run(config: Config, probe_steps: int = 2, reference_run: str | Path | None = None) -> Estimate:
    """Time `probe_steps` real RL steps and one exam of `config` here; project the whole run.

    The probe runs the same recipe (model, batch, sampling, exam) with logging to wandb off,
    no completions log and no checkpoints but the final one, in a temporary directory that is
    deleted afterwards. `reference_run`: a finished run of the same recipe (e.g. the shipped
    demo run) whose logged step times scale the projection for completions that grow.
    """
    from grpo_lab.trainer import GRPOTrainer, peak_memory_bytes

    if probe_steps < 1:
        raise ValueError(f"probe_steps must be at least 1, got {probe_steps}")
    marks: list[tuple[str, float]] = []

    class _Clock:
        def on_step_end(self, trainer, step, metrics):
            marks.append(("step", time.perf_counter()))

        def on_evaluate(self, trainer, step, result):
            marks.append(("exam", time.perf_counter()))

        def on_train_end(self, trainer):
            pass

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="grpo-lab-probe-") as tmp:
        probe = config.with_overrides([
            f"grpo.steps={probe_steps}", f"eval.every={probe_steps}", "eval.at_start=false",
            f"tracking.run_dir={tmp}", "tracking.wandb_mode=disabled", "tracking.progress=false",
            "tracking.log_completions_every=0", "tracking.save_every=0",
        ])
        trainer = GRPOTrainer(probe, callbacks=[_Clock()], run_dir=tmp)
        loaded = time.perf_counter()
        device = trainer.device
        if getattr(device, "type", "") == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats(device)
        trainer.train()
        peak = peak_memory_bytes(device)
        del trainer
    probe_seconds = time.perf_counter() - start
    step_times = [t for kind, t in marks if kind == "step"]
    exam_times = [t for kind, t in marks if kind == "exam"]
    if len(step_times) != probe_steps or not exam_times:
        raise RuntimeError(f"the probe saw {len(step_times)} steps and {len(exam_times)} exams; expected "
                           f"{probe_steps} and 1 (did a callback hook change?)")
    before_last = step_times[-2] if probe_steps > 1 else loaded
    step_seconds = step_times[-1] - before_last
    # The final exam follows the last step (and its checkpoint, which the real run writes too).
    exam_seconds = exam_times[-1] - step_times[-1]
    growth = _growth(reference_run, probe_steps) if reference_run is not None else 1.0
    steps, exams = config.grpo.steps, count_exams(config)
    load_seconds = loaded - start
    total = load_seconds + growth * (steps * step_seconds + exams * exam_seconds)
    if not math.isfinite(total):
        raise RuntimeError(f"the probe measured a non-finite time ({step_seconds=}, {exam_seconds=})")
    return Estimate(step_seconds=step_seconds, exam_seconds=exam_seconds, load_seconds=load_seconds,
                    peak_memory_bytes=peak, steps=steps, exams=exams, growth=growth, total_seconds=total,
                    probe_seconds=probe_seconds)
