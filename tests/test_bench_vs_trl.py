"""benchmarks/bench_vs_trl.py gives grpo_lab the same work as TRL: the recipe's reward weights and thread count."""

from __future__ import annotations

import argparse

from conftest import load_benchmark

from grpo_lab.config import load_config, packaged_config


def _micro_spec(bench, threads: int = 1) -> dict:
    args = argparse.Namespace(workload="micro", quick=True, warmup=None, steps=None, device="cpu", dtype="float32",
                              threads=threads, prompts_per_step=None, group_size=None, max_new_tokens=None,
                              prompt_tokens=None, train_forward="auto", keep_freed_memory="grpo_lab")
    return bench.workload_spec(args)


def test_grpo_lab_worker_scores_with_the_recipe_weights_that_trl_gets(tmp_path):
    bench = load_benchmark("bench_vs_trl")
    spec = _micro_spec(bench)
    recipe = load_config(packaged_config("micro_r1_zero"))
    assert spec["reward_weights"] == list(recipe.rewards.weights) == [1.0, 0.2]  # what TRL's GRPOConfig gets
    trainer = bench.build_grpo_lab_trainer(spec, bench.build_model_dir(spec, tmp_path))
    # Passed reward functions weigh 1.0 each unless told: the benchmark must pass the recipe's.
    assert trainer.reward_weights == spec["reward_weights"]
    assert [f.__name__ for f in trainer.reward_funcs] == [f"{name}_reward" for name in recipe.rewards.functions]
    assert trainer.config.grpo.cpu_threads == spec["threads"] == 1  # TRL's count, not a timed choice
    metrics = trainer.training_step()
    per_function = (metrics["rewards/accuracy_reward/mean"], metrics["rewards/format_reward/mean"])
    assert abs(metrics["reward"] - (per_function[0] + 0.2 * per_function[1])) < 1e-6


def test_machine_kind_names_the_kernel_level_torch_runs():
    # The figures of a run with capped kernels (an AVX2 stand-in on an AVX-512 machine) must say so.
    from grpo_lab.cpu import torch_kernels

    line = load_benchmark("bench_vs_trl").machine_kind()
    assert line.endswith(f"; torch kernels: {torch_kernels()}") and " cores, " in line
