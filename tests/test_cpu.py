"""Process settings for CPU speed (grpo_lab/cpu.py): glibc keeps freed memory, torch threads ≤ cores."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from grpo_lab.config import load_config, packaged_config

# A training step's pattern: micro-batches of different lengths, each allocating its activations
# (0.1-2.5 MiB each) and freeing them together. Run in a fresh interpreter each time: the malloc
# setting is process-wide and cannot be undone.
_LOOP = textwrap.dedent("""
    import random, resource, sys
    import torch
    from grpo_lab.cpu import keep_freed_memory
    applied = keep_freed_memory() if sys.argv[1] == "keep" else None
    w = torch.randn(512, 128)
    rng = random.Random(0)
    def step():
        for L in [rng.randrange(20, 160) for _ in range(8)]:
            x = torch.randn(8 * L, 128)
            acts = [x @ w.t() for _ in range(6)]
            del acts
    for _ in range(3):  # warm-up: the heap grows to its working size
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step()
    print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _page_faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _LOOP, mode], capture_output=True, text=True, check=True,
                         env={"OMP_NUM_THREADS": "1", "PATH": ""}).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_kept_freed_memory_stops_the_page_faults_of_every_step():
    applied, faults_kept = _page_faults("keep")
    _, faults_default = _page_faults("default")
    assert applied == "True"
    # By default glibc maps blocks over its (adaptive) threshold afresh and trims the freed top of its
    # heap, and the next micro-batch faults those pages in again (~256 faults per MiB).
    assert faults_default > 10_000, faults_default
    assert faults_kept < faults_default / 20, (faults_kept, faults_default)


def test_keep_freed_memory_is_on_by_default_and_can_be_turned_off():
    assert load_config(packaged_config("micro_r1_zero")).grpo.keep_freed_memory is True
    assert load_config(packaged_config("micro_r1_zero"), ["grpo.keep_freed_memory=false"]).grpo.keep_freed_memory is False


def test_the_trainer_keeps_freed_memory_only_when_the_config_says_so(tmp_path, monkeypatch, tiny_model_dir, tiny_exam):
    from conftest import tiny_config

    import grpo_lab.trainer as trainer_module

    calls = []
    monkeypatch.setattr(trainer_module, "keep_freed_memory", lambda: calls.append(1) or True)
    for keep in (False, True):
        cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / str(keep), keep_freed_memory=keep)
        trainer_module.GRPOTrainer(cfg)
        assert len(calls) == int(keep)


def test_torch_kernels_names_the_level_and_the_cap_that_chose_it():
    # torch reads ATEN_CPU_CAPABILITY once, at start: a fresh interpreter. "default" exists on every CPU.
    code = "from grpo_lab.cpu import torch_kernels, machine_record; print(torch_kernels()); print(machine_record()['torch_cpu_kernels'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1", "PATH": ""}).stdout.splitlines()
    assert out == ["DEFAULT (capped: ATEN_CPU_CAPABILITY=default)"] * 2
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"OMP_NUM_THREADS": "1", "PATH": ""}).stdout.splitlines()
    assert out[0] == out[1] and out[0] in {"DEFAULT", "VSX", "Z VECTOR", "NO AVX", "AVX2", "AVX512", "SVE256"}  # torch.backends.cpu
