"""benchmarks/micro_acceptance.py: the paired "beyond noise" tests that judge the coin-flip control."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import load_benchmark


def _load():
    return load_benchmark("micro_acceptance")


def _write_exams(run_dir: Path, rates: dict[int, list[float]]) -> None:
    (run_dir / "eval").mkdir(parents=True)
    for step, values in rates.items():
        pd.DataFrame({"reflection_rate": values}).to_csv(run_dir / "eval" / f"questions_step{step:06d}.csv")


def test_end_test_sees_only_the_last_exam_and_late_test_averages_the_last_forty_percent(tmp_path):
    acceptance = _load()
    n = 30
    base = [0.0, 0.0625] * (n // 2)
    # A drift that is up at steps 300-400 and back down by chance at the end (500).
    up = [v + 0.125 for v in base]
    _write_exams(tmp_path, {0: base, 100: up, 200: base, 300: up, 400: up, 500: base})
    end_change, end_t = acceptance.paired_t(tmp_path, "reflection_rate")
    assert end_change == pytest.approx(0.0) and end_t == 0.0
    late_change, late_t = acceptance.paired_t(tmp_path, "reflection_rate", late=True)
    assert late_change == pytest.approx(0.125 * 2 / 3)  # steps 300, 400, 500; not 100
    assert late_t > 100  # the same change on every question: (almost) no spread, a certain rise


def test_a_change_within_the_per_question_noise_is_not_a_rise(tmp_path):
    acceptance = _load()
    noise = [0.0625 * ((-1) ** i) * (i % 3) for i in range(30)]  # ups and downs that cancel
    _write_exams(tmp_path, {0: [0.1] * 30, 500: [0.1 + d for d in noise]})
    change, t = acceptance.paired_t(tmp_path, "reflection_rate")
    assert abs(t) < 2 and abs(change) < 0.01


def test_the_tables_name_the_torch_kernel_level_each_run_used(tmp_path, capsys):
    # AVX2 and AVX512 runs of one seed are different runs; the acceptance table must say which it judged.
    import json

    from test_bands import fake_run

    for kind, kernels in (("main", "AVX2 (capped: ATEN_CPU_CAPABILITY=avx2)"), ("control", None)):
        run_dir = fake_run(tmp_path / f"{kind}-seed0", 0, {0: 0.2, 500: 0.7 if kind == "main" else 0.2})
        exam = {"pass@1": 0.2, "mean_length": 20.0, "reflection_rate": 0.5}
        summary = {"step0": exam, "final": {**exam, "pass@1": 0.7 if kind == "main" else 0.2},
                   "rl_seconds": 200.0, "total_seconds": 210.0}
        if kernels:
            summary["machine"] = {"torch_cpu_kernels": kernels}
        (run_dir / "summary.json").write_text(json.dumps(summary))
    _load().analyse(tmp_path, [0])
    out = capsys.readouterr().out
    main_line = next(line for line in out.splitlines() if line.startswith("main s0"))
    control_line = next(line for line in out.splitlines() if line.startswith("control s0"))
    assert " AVX2 " in main_line and "capped" not in main_line  # the level, without the cap's detail
    assert " ? " in control_line  # a run from before the record


def test_a_constant_fall_is_not_a_rise():
    # With no spread across questions, the t of a fall is -inf: before, it read +inf, a rise beyond noise.
    acceptance = _load()
    start = pd.Series([0.5] * 30)  # binary fractions: the changes are exact, their spread exactly 0
    assert acceptance.change_and_t(start, [start - 0.25])[1] == float("-inf")
    assert acceptance.change_and_t(start, [start + 0.25])[1] == float("inf")
    assert acceptance.change_and_t(start, [start.copy()]) == (0.0, 0.0)
