"""benchmarks/where_time_goes.py: the trainer names its phases for a profiler, and the script attributes time and FLOPs right."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch
from conftest import load_benchmark, tiny_config
from torch.profiler import ProfilerActivity, profile

from grpo_lab.trainer import GRPOTrainer


def _event(name: str, start: float, end: float, self_us: float) -> SimpleNamespace:
    return SimpleNamespace(name=name, time_range=SimpleNamespace(start=start, end=end), self_cpu_time_total=self_us)


def test_a_training_step_is_three_named_profiler_ranges(tiny_model_dir, tiny_exam, tmp_path):
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run")  # β = 0.04: a log-prob pass
    trainer = GRPOTrainer(cfg)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.training_step()
    names = [e.name for e in prof.events()]
    for phase in ("grpo/rollout", "grpo/logprobs", "grpo/update"):
        assert names.count(phase) == 1, phase
    bench = load_benchmark("where_time_goes")
    parts, by_op = bench.attribute(prof.events())
    assert set(parts) == {"rollout", "log-probs", "update"}
    assert parts["update"]["matmul"] > 0 and "aten::mm" in by_op["update"]  # the backward's matmuls are in the update
    for p in parts.values():
        assert abs(p["matmul"] + p["attention"] + p["other ops"] + p["outside ops"] - p["wall"]) < 1e-9


def test_operators_are_attributed_to_the_phase_they_start_in_by_self_time():
    bench = load_benchmark("where_time_goes")
    events = [
        _event("grpo/rollout", 0, 1000, 50),
        _event("aten::linear", 10, 400, 20),  # its matmul child below holds the time: self time counts once
        _event("aten::mm", 12, 390, 378),
        _event("aten::_scaled_dot_product_flash_attention_for_cpu", 400, 600, 200),
        _event("grpo/update", 2000, 3000, 0),
        _event("aten::addmm", 2100, 2500, 400),
        _event("aten::mul", 2500, 2600, 100),
        _event("aten::mul", 1500, 1600, 100),  # between phases: in none
    ]
    parts, by_op = bench.attribute(events)
    rollout, update = parts["rollout"], parts["update"]
    assert rollout["wall"] == 1000e-6 and update["wall"] == 1000e-6
    assert abs(rollout["matmul"] - 378e-6) < 1e-12 and abs(rollout["attention"] - 200e-6) < 1e-12
    assert abs(rollout["other ops"] - 20e-6) < 1e-12  # aten::linear's own time
    assert abs(rollout["outside ops"] - 402e-6) < 1e-12
    assert abs(update["matmul"] - 400e-6) < 1e-12 and abs(update["other ops"] - 100e-6) < 1e-12
    assert by_op["update"]["aten::mul"] == [100e-6, 1]


def test_phase_floors_count_a_shared_prefill_once_per_group_and_the_update_twice():
    bench = load_benchmark("where_time_goes")
    G = 2
    rollout = SimpleNamespace(
        prompt_mask=torch.tensor([[0, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1]]),  # 2 prompts × G = 2: 5 tokens once
        completion_mask=torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0]]),  # 8 generated
    )
    batch = {"attention_mask": torch.cat([rollout.prompt_mask, rollout.completion_mask], dim=1)}  # 18 real tokens
    floors = bench.step_floors(rollout, batch, G, n_linear=1000, beta=0.04, num_iterations=1)
    assert floors == {"rollout": 2 * 1000 * (5 + 8), "log-probs": 2 * 1000 * 18, "update": 4 * 1000 * 18}
    assert bench.step_floors(rollout, batch, G, 1000, beta=0.0, num_iterations=1)["log-probs"] == 0
    assert bench.step_floors(rollout, batch, G, 1000, beta=0.04, num_iterations=2)["log-probs"] == 2 * 2 * 1000 * 18


def test_the_script_prints_a_table_and_the_achieved_fraction(capsys):
    bench = load_benchmark("where_time_goes")
    threads = torch.get_num_threads()
    try:
        bench.main(["--threads", "1", "--warmup", "0", "--steps", "1", "--top", "3", "--set", "grpo.max_new_tokens=24",
                    "--set", "grpo.prompts_per_step=2", "--set", "grpo.group_size=4"])
    finally:
        torch.set_num_threads(threads)  # the script sets the process's thread count
    out = capsys.readouterr().out
    assert "| rollout |" in out and "| update |" in out and "| **step** |" in out
    assert "rollout: the 3 operators with the most self time" in out
    fraction = float(re.search(r"^achieved_fraction=([0-9.]+)$", out, re.M).group(1))
    assert 0.0 < fraction < 1.0


def test_a_missing_adapter_is_named_in_the_error(tmp_path):
    bench = load_benchmark("where_time_goes")
    with pytest.raises(SystemExit, match=r"--adapter .*nowhere: no adapter_model.safetensors there"):
        bench.main(["--adapter", str(tmp_path / "nowhere"), "--steps", "1", "--warmup", "0", "--threads", "1"])
