"""Where the time of a GRPO step goes: per phase, its FLOP floor, and what the time is spent on.

    python benchmarks/where_time_goes.py                  # the micro recipe from its base model, 2 threads (~1 min)
    python benchmarks/where_time_goes.py --adapter runs/micro_r1_zero-seed0/checkpoints/step-000500  # late, after `make demo`
    python benchmarks/where_time_goes.py --threads 1 --steps 8 --top 10

A benchmark (it prints figures; nothing is asserted). It answers "what would make a step faster?"
before anyone tries: for each phase of `GRPOTrainer.training_step`, it prints

* the measured seconds per step (median over `--steps` plain steps, no profiler attached);
* the phase's FLOP floor: the FLOPs of its linear layers (2·N per token for a forward, 4·N for a
  forward and a backward to the activations; N = the base model's linear weights, LoRA ignored,
  real tokens only) over a matmul rate measured on this machine just before (the same floor as
  `bench_vs_trl.py`'s roofline, split by phase; the rollout's floor counts each prompt once per
  group, since the G samples share one prefill);
* from `--steps` more steps under `torch.profiler`: the share of the phase's time inside matrix
  multiplications, inside attention, inside every other PyTorch operation, and outside any
  operation (Python, dispatch, waiting; with the profiler's own cost, which inflates this share);
* for the rollout: decode steps per rollout, milliseconds per decode step, and how full the
  batch is on average (completions' tokens over rows × decode steps): a step costs nearly as much
  with few rows left as with all of them, so a long tail of one or two long completions is slow.

Phases are the trainer's own profiler ranges ("grpo/rollout", "grpo/logprobs", "grpo/update");
"rest" is the remainder of the step (rewards, advantages, metrics). By default the policy starts
from the base model, where completions are short and the rollout is mostly tail. `--adapter`
starts it from a checkpoint's LoRA adapter instead: `make demo` writes one every 100 steps, and
its step 500 has completions as long as at the end of the demo (the timed steps train on from
there; the policy moves a little).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

PHASES = {"grpo/rollout": "rollout", "grpo/logprobs": "log-probs", "grpo/update": "update"}
MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::mv", "aten::addmv", "aten::dot"}


def op_class(name: str) -> str:
    """The kind of work an operator's self time is: matmul, attention or other."""
    if name in MATMUL_OPS:
        return "matmul"
    if "scaled_dot_product" in name:
        return "attention"
    return "other ops"


def linear_weights(model) -> int:
    """N: weights of the base model's Linear layers (LM head included, LoRA adapters excluded)."""
    import torch

    return sum(m.weight.numel() for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and "lora_" not in name)


def step_floors(rollout, batch, group_size: int, n_linear: int, beta: float, num_iterations: int) -> dict[str, float]:
    """FLOPs of each phase's linear layers for one step (see the module docstring)."""
    prompt_once = float(rollout.prompt_mask[::group_size].sum())  # one prefill per group
    generated = float(rollout.completion_mask.sum())
    all_tokens = float(batch["attention_mask"].sum())
    logprob_passes = (beta != 0.0) + (num_iterations > 1)
    return {
        "rollout": 2 * n_linear * (prompt_once + generated),
        "log-probs": 2 * n_linear * all_tokens * logprob_passes,
        "update": 4 * n_linear * all_tokens * num_iterations,
    }


def attribute(events) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, list[float]]]]:
    """Seconds of each phase by kind of work, from profiled steps' events (CPU, the main thread).

    An operator belongs to the phase whose range contains its start; its self time is counted
    (so nested operators are not counted twice). "outside ops" is the phase's wall time minus
    the self time of every operator in it. Also returns, per phase, each operator's
    [self seconds, calls].
    """
    ranges = [(e.time_range.start, e.time_range.end, PHASES[e.name]) for e in events if e.name in PHASES]
    out: dict[str, dict[str, float]] = {}
    by_op: dict[str, dict[str, list[float]]] = {}
    for start, end, phase in ranges:
        out.setdefault(phase, {"wall": 0.0, "matmul": 0.0, "attention": 0.0, "other ops": 0.0})["wall"] += (end - start) / 1e6
    for e in events:
        if e.name in PHASES:
            continue
        for start, end, phase in ranges:
            if start <= e.time_range.start < end:
                out[phase][op_class(e.name)] += e.self_cpu_time_total / 1e6
                op = by_op.setdefault(phase, {}).setdefault(e.name, [0.0, 0])
                op[0] += e.self_cpu_time_total / 1e6
                op[1] += 1
                break
    for parts in out.values():
        parts["outside ops"] = max(parts["wall"] - parts["matmul"] - parts["attention"] - parts["other ops"], 0.0)
    return out, by_op


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="micro_r1_zero", help="a packaged config name or a YAML path")
    parser.add_argument("--adapter", default="none",
                        help="a checkpoint directory whose LoRA adapter the policy starts from ('none': the base model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="plain steps timed, then as many profiled")
    parser.add_argument("--top", type=int, default=0, help="also list each phase's N costliest operators")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = parser.parse_args(argv)

    import torch
    from torch.profiler import ProfilerActivity, profile

    from grpo_lab.config import load_config, packaged_config
    from grpo_lab.logprobs import training_batch
    from grpo_lab.trainer import GRPOTrainer

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_vs_trl import machine_kind, measure_matmul_gflops

    adapter = None if args.adapter == "none" else Path(args.adapter) / "adapter_model.safetensors"
    if adapter is not None and not adapter.exists():  # before the model is built: bad input fails fast
        raise SystemExit(f"--adapter {args.adapter}: no adapter_model.safetensors there (`make demo` writes "
                         "runs/micro_r1_zero-seed0/checkpoints/step-000100 … step-000500)")
    path = Path(args.config) if args.config.endswith((".yaml", ".yml")) else packaged_config(args.config)
    run_dir = tempfile.mkdtemp(prefix="where_time_goes-")
    cfg = load_config(path, ["eval.every=0", "eval.at_start=false", "tracking.save_every=0",
                             "tracking.wandb_mode=disabled", f"tracking.run_dir={run_dir}",
                             f"grpo.cpu_threads={args.threads}", *args.set])
    torch.set_num_threads(args.threads)
    trainer = GRPOTrainer(cfg)
    if adapter is not None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(trainer.model, load_file(str(adapter)))
    g = cfg.grpo
    n_linear = linear_weights(trainer.model)
    hidden = trainer.model.get_input_embeddings().embedding_dim
    rate = measure_matmul_gflops({"threads": args.threads, "dtype": "float32", "device": "cpu"}, hidden)

    for _ in range(args.warmup):
        trainer.training_step()
    seconds: dict[str, list[float]] = {"rollout": [], "log-probs": [], "update": [], "rest": [], "step": []}
    floors: dict[str, list[float]] = {"rollout": [], "log-probs": [], "update": []}
    decode_steps, row_use = [], []
    for _ in range(args.steps):
        m = trainer.training_step()
        seconds["rollout"].append(m["time/rollout"])
        seconds["log-probs"].append(m["time/scoring"])  # rewards + advantages + log-probs; see "rest"
        seconds["update"].append(m["time/update"])
        seconds["step"].append(m["step_time"])
        seconds["rest"].append(m["step_time"] - m["time/rollout"] - m["time/scoring"] - m["time/update"])
        rollout = trainer._last_rollout
        for phase, flops in step_floors(rollout, training_batch(rollout), g.group_size, n_linear, g.beta,
                                        g.num_iterations).items():
            floors[phase].append(flops)
        lengths = rollout.completion_mask.sum(1)
        longest = max(int(lengths.max()), 1)
        decode_steps.append(longest)
        row_use.append(float(lengths.sum()) / (longest * len(lengths)))

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(args.steps):
            trainer.training_step()
        profiled = (time.perf_counter() - t0) / args.steps
    shares, by_op = attribute(prof.events())

    med = {k: statistics.median(v) for k, v in seconds.items()}
    print(f"where the time of a GRPO step goes: {path.name}, adapter {args.adapter}, {args.threads} threads, "
          f"{args.steps} steps after {args.warmup} warm-up")
    print(f"machine: {machine_kind()}; torch {torch.__version__}; matmul rate {rate:.0f} GFLOP/s "
          f"(({8192}, {hidden}) @ ({hidden}, {4 * hidden}), best of 10); N = {n_linear / 1e6:.3f}M linear weights")
    print()
    print("| phase | s/step | GFLOP floor | floor s | achieved | matmul | attention | other ops | outside ops |")
    print("|---|---|---|---|---|---|---|---|---|")
    total_floor = 0.0
    for phase in ("rollout", "log-probs", "update"):
        flops = statistics.median(floors[phase])
        floor = flops / (rate * 1e9)
        total_floor += floor
        parts = shares.get(phase)
        split = (" | ".join(f"{parts[k] / parts['wall']:.0%}" for k in ("matmul", "attention", "other ops", "outside ops"))
                 if parts and parts["wall"] and flops else "– | – | – | –")  # no FLOPs: β = 0, μ = 1, no pass
        label = "log-probs (+ rewards)" if phase == "log-probs" else phase
        achieved = f"{floor / med[phase]:.0%}" if flops else "–"
        print(f"| {label} | {med[phase]:.3f} | {flops / 1e9:.2f} | {floor:.3f} | {achieved} | {split} |")
    print(f"| rest (metrics) | {med['rest']:.3f} | | | | | | | |")
    print(f"| **step** | {med['step']:.3f} | | {total_floor:.3f} | {total_floor / med['step']:.0%} | | | | |")
    print()
    print(f"profiled steps took {profiled:.3f} s each against {med['step']:.3f} s plain: the profiler's cost, "
          "counted in 'outside ops'.")
    steps_med = statistics.median(decode_steps)
    print(f"rollout: {steps_med:.0f} decode steps per rollout (the longest completion), "
          f"{1e3 * med['rollout'] / max(steps_med, 1):.2f} ms each; the completions fill "
          f"{statistics.median(row_use):.0%} of rows × decode steps (the rest is the tail: the last decode "
          "steps run for the few longest completions)")
    if args.top:
        for phase in ("rollout", "log-probs", "update"):
            if phase not in by_op:
                continue
            wall = shares[phase]["wall"]
            top = sorted(by_op[phase].items(), key=lambda kv: -kv[1][0])[: args.top]
            print(f"\n{phase}: the {len(top)} operators with the most self time (share of the phase; "
                  "µs per call; calls per step)")
            for name, (sec, calls) in top:
                print(f"  {name:<50s} {sec / wall:5.1%}  {1e6 * sec / calls:8.1f} µs  {calls / args.steps:7.0f}")
    print(f"achieved_fraction={total_floor / med['step']:.3f}")


if __name__ == "__main__":
    main()
