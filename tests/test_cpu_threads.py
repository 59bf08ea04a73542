"""The trainer's CPU thread count (grpo.cpu_threads): fixed, or the fastest by timing, never a change of numbers."""

from __future__ import annotations

import torch
from conftest import tiny_config

from grpo_lab.cpu import fastest_threads, thread_candidates
from grpo_lab.tracking import read_jsonl, read_summary
from grpo_lab.trainer import GRPOTrainer


def test_fastest_threads_keeps_the_count_whose_probe_ran_fastest():
    # A probe that is slow at 2 threads (as on a machine whose other core is busy) and fast at 1.
    def probe():
        import time

        time.sleep(0.004 if torch.get_num_threads() == 2 else 0.0005)

    before = torch.get_num_threads()
    try:
        best, seconds = fastest_threads(probe, [1, 2])
        assert best == 1 and torch.get_num_threads() == 1
        assert seconds[2] > seconds[1]
    finally:
        torch.set_num_threads(before)


def test_thread_candidates_never_exceed_the_cores(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert thread_candidates() == [1, 2]
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert thread_candidates() == [1]
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert thread_candidates() == [1, 2, 4]


def _train(tmp_path, name, cpu_threads, model_dir, exam):
    # eval.every 2 of 3 steps: threads are chosen at the start and again after the step-2 exam.
    cfg = tiny_config(model_dir, exam, tmp_path / name, cpu_threads=cpu_threads)
    cfg.eval.every = 2
    trainer = GRPOTrainer(cfg)
    trainer.train()
    return trainer


def test_chosen_threads_are_logged_and_change_no_number(tmp_path, monkeypatch, tiny_model_dir, tiny_exam):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        auto = _train(tmp_path, "auto", 0, tiny_model_dir, tiny_exam)
        fixed = _train(tmp_path, "fixed", 1, tiny_model_dir, tiny_exam)
    finally:
        torch.set_num_threads(before)
    chosen = read_summary(auto.run_dir / "summary.json")["cpu_threads"]
    assert chosen["chosen"] in thread_candidates() and set(chosen["probe_ms"]) == {str(n) for n in thread_candidates()}
    lines = {name: [r for r in read_jsonl(t.run_dir / "metrics.jsonl") if "loss" in r] for name, t in
             (("auto", auto), ("fixed", fixed))}
    assert {r["time/threads"] for r in lines["fixed"]} == {1.0}
    assert all(r["time/threads"] == chosen["chosen"] for r in lines["auto"][-1:])
    strip = [{k: v for k, v in r.items() if k != "step_time" and not k.startswith("time/")} for r in lines["auto"]]
    assert strip == [{k: v for k, v in r.items() if k != "step_time" and not k.startswith("time/")}
                     for r in lines["fixed"]]


def test_omp_num_threads_is_left_to_the_user(tmp_path, monkeypatch, tiny_model_dir, tiny_exam):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    trainer = _train(tmp_path, "omp", 0, tiny_model_dir, tiny_exam)
    assert "cpu_threads" not in read_summary(trainer.run_dir / "summary.json")
    assert all("time/threads" not in r for r in read_jsonl(trainer.run_dir / "metrics.jsonl"))


def test_more_threads_must_be_clearly_faster_to_be_chosen():
    # 2 threads only 2.5% faster: not worth the risk of a busy core (cpu.MORE_THREADS_GAIN).
    def probe():
        import time

        time.sleep(0.0040 if torch.get_num_threads() == 1 else 0.0039)

    before = torch.get_num_threads()
    try:
        assert fastest_threads(probe, [1, 2])[0] == 1
    finally:
        torch.set_num_threads(before)
