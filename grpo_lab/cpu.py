"""Process settings that make a small model fast on a CPU: intra-op threads and glibc's malloc.

Both are process-wide and only change how long a run takes. The malloc setting changes no number;
the thread count changed none on the micro model (see `fastest_threads` for other models).

**Threads.** More torch threads than free cores make every parallel region wait at its barrier
for a thread that lost its core. Measured on a 2-core machine with the micro recipe (docs/
benchmarks.md): with one other busy process, 2 threads ran the steps 3.1-3.8x slower than 1
thread; idle, 2 threads were about 1.35x faster than 1. The best count depends on what else runs
(a second notebook, a browser, tests), so the trainer does not guess: `fastest_threads` times a
small forward of the model at 1, 2 (and 4) threads and keeps the fastest, at the start of
training and again after every exam (grpo.cpu_threads: 0). `set_threads` (the command line's
default before the trainer chooses) uses at most 2 unless OMP_NUM_THREADS says otherwise.

**malloc.** PyTorch's CPU tensors are allocated with plain `malloc`, with no caching allocator as
on a GPU. A GRPO step of the micro model allocates and frees thousands of temporaries of 0.1–2 MB
(activations of a micro-batch, LoRA outputs, the rollout's logits). glibc serves blocks over its
mmap threshold (128 KiB at start, adapted upward as blocks are freed) with a fresh `mmap` and
gives them back to the kernel on `free`; it also trims the top of the heap once more than the
trim threshold lies free there. Either way the next step's tensors land on pages the kernel must
fault in and zero again: measured, ~6,000 page faults per update and ~3,000 per rollout of the
micro recipe, none once freed memory is kept (benchmarks/bench_vs_trl.py, docs/benchmarks.md).
`keep_freed_memory` raises both thresholds with `mallopt(3)` so that freed blocks stay in the
heap for the next step. The price is that the process's memory does not shrink after a peak
(RSS stays at the high-water mark, which is also what a caching allocator does).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence

# mallopt(3) parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20
"""Blocks up to 32 MiB come from the heap (glibc's largest allowed value on 64-bit); larger ones
(a big model's weights or logits) are still mapped and unmapped on their own."""
TRIM_THRESHOLD_BYTES = 1 << 30
"""Free memory at the top of the heap is given back to the kernel only past 1 GiB."""

_kept = False


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (see the module docstring). Returns whether it applied.

    Does nothing, and returns False, where the C library is not glibc (macOS, musl, Windows):
    their allocators behave differently and have no such switch. Safe to call more than once.
    """
    global _kept
    if _kept:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # The order matters: setting the mmap threshold turns glibc's dynamic adjustment off, and the
    # trim threshold must stay above it.
    _kept = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    return _kept


def set_threads(max_threads: int = 2) -> None:
    """Use min(cores, max_threads) torch threads on a CPU-only machine, unless OMP_NUM_THREADS is set."""
    import torch

    if "OMP_NUM_THREADS" not in os.environ and not torch.cuda.is_available():
        torch.set_num_threads(max(1, min(os.cpu_count() or 1, max_threads)))


def thread_candidates(max_threads: int = 4) -> list[int]:
    """The thread counts worth timing here: 1, 2 and 4, up to the number of cores."""
    cores = os.cpu_count() or 1
    return [n for n in (1, 2, 4) if n <= min(cores, max_threads)] or [1]


MORE_THREADS_GAIN = 1.1
"""More threads are chosen only when the probe runs at least this much faster with them: too many
threads under load cost far more (3.8× on the micro recipe) than too few on an idle machine (1.35×)."""


def fastest_threads(probe: Callable[[], object], candidates: Sequence[int], rounds: int = 5) -> tuple[int, dict[int, float]]:
    """Set torch to the thread count under which `probe` runs fastest now, and return it with the timings.

    Each round times `probe` once at every candidate count, in a rotating order, so that a change
    of load during the measurement hits all counts alike; the median over the rounds decides, with
    a bias to fewer threads (MORE_THREADS_GAIN). A first untimed call at each count warms it up.

    On the micro model the count changes no bit (the 500-step demo gave identical metrics at 1
    and at 2 threads; docs/benchmarks.md). That is not guaranteed for every model: a library
    may split a long sum across threads and round it differently. Where bit-exact reproduction
    or resumption matters on another model, fix the count (grpo.cpu_threads or OMP_NUM_THREADS).
    """
    import torch

    candidates = list(candidates)
    times: dict[int, list[float]] = {n: [] for n in candidates}
    for n in candidates:
        torch.set_num_threads(n)
        probe()
    for r in range(rounds):
        for n in candidates[r % len(candidates):] + candidates[: r % len(candidates)]:
            torch.set_num_threads(n)
            t0 = time.perf_counter()
            probe()
            times[n].append(time.perf_counter() - t0)
    medians = {n: statistics.median(ts) for n, ts in times.items()}
    best = min(candidates)
    for n in sorted(candidates):
        if medians[n] * MORE_THREADS_GAIN <= medians[best]:
            best = n
    torch.set_num_threads(best)
    return best, medians


# ------------------------------------------------------------------------------ the arithmetic's machine
# PyTorch picks its own kernels by CPU (`torch.backends.cpu.get_cpu_capability()`: DEFAULT, AVX2,
# AVX512, ...), and the vector width changes the order of additions in reductions. So a run is
# bitwise reproducible only on machines that run the same kernel level: the micro demo, seed 0, ends
# at exam pass@1 0.635 with AVX512 kernels and at 0.681 with AVX2 kernels, both inside the reference
# band (docs/benchmarks.md, issue 18, third session). These environment variables cap the level:
# on an AVX-512 machine they run the AVX2 kernels, and reproduce an AVX2 machine's numbers.
ISA_CAPS = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")


def torch_kernels() -> str:
    """The kernel level PyTorch runs on this CPU ("AVX512", "AVX2", ...), with any cap set to choose it."""
    import torch

    level = torch.backends.cpu.get_cpu_capability()
    caps = [f"{k}={os.environ[k]}" for k in ISA_CAPS if os.environ.get(k)]
    return level + (f" (capped: {', '.join(caps)})" if caps else "")


def cpu_model() -> tuple[str, set[str]]:
    """The CPU's model name and its feature flags, from /proc/cpuinfo (Linux); elsewhere what `platform` says."""
    import platform

    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and name in ("", platform.machine(), "x86_64"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return name, flags


def machine_record(device: str = "cpu") -> dict[str, object]:
    """What a run's numbers depend on besides the code and the config: torch, the CPU and its kernels.

    Written to each run's summary.json ("machine"), so that two runs that should be bitwise equal can
    be checked for running the same arithmetic first.
    """
    import torch

    name, _ = cpu_model()
    record: dict[str, object] = {"torch": torch.__version__, "cpu": name, "cores": os.cpu_count(),
                                 "torch_cpu_kernels": torch_kernels()}
    if str(device).startswith("cuda") and torch.cuda.is_available():
        record["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return record
