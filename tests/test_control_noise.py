"""benchmarks/control_noise.py: how often the acceptance's control line fires when the policy is fixed."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import load_benchmark


def _load():
    return load_benchmark("control_noise")


def _table(pass1: list[float], length: list[float], reflection: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"pass@1": pass1, "mean_length": length, "reflection_rate": reflection})


def test_exams_that_agree_question_by_question_never_raise_an_alarm():
    noise = _load()
    same = _table([0.1, 0.5, 0.3, 0.2], [20.0, 25.0, 22.0, 30.0], [0.0, 0.0, 0.0625, 0.0])
    tables = [same.copy() for _ in range(6)]
    rates = noise.false_alarms(tables, noise.simulate(tables, draws=50))
    assert set(rates) == {"per test, pass@1", "per test, mean_length", "per test, reflection_rate",
                          "per control run, 500 steps", "per acceptance, 500 steps",
                          "per control run, 300 steps", "per acceptance, 300 steps"}
    assert all(rate == 0 for rate in rates.values())


def test_one_exam_higher_on_every_question_fires_as_an_end_and_not_as_a_start():
    noise = _load()
    jitter = [0.0, 0.01, -0.01, 0.02]
    low = [_table([0.2 + j * (i + 1) for j in jitter], [20.0] * 4, [0.0] * 4) for i in range(4)]
    high = _table([0.6, 0.62, 0.58, 0.61], [20.0] * 4, [0.0] * 4)
    tables = [*low, high]
    rates = noise.false_alarms(tables, noise.simulate(tables, draws=10))
    # Of the 20 ordered pairs, the 4 that end on the high exam are rises (t > 2); the 4 that start
    # on it are falls, which a rise test does not flag.
    assert rates["per test, pass@1"] == pytest.approx(4 / 20)
    assert rates["per test, mean_length"] == 0 and rates["per test, reflection_rate"] == 0
    # A 300-step run uses 4 of the 5 exams; it fires when the high one is in its late window.
    assert 0 < rates["per control run, 300 steps"] < 1
    assert "per control run, 500 steps" not in rates  # needs 6 exams


def test_the_script_examines_the_micro_model_with_distinct_seeds(capsys):
    noise = _load()
    tables = noise.sit_exams(2, adapter=None, k=2)
    assert len(tables) == 2 and len(tables[0]) == 30  # the micro exam's 30 questions
    assert not tables[0].equals(tables[1])  # two exam seeds, two sets of samples
    assert noise.main(["--exams", "2", "--k", "2", "--draws", "5"]) == 0
    out = capsys.readouterr().out
    assert "per test, reflection_rate" in out and "false_alarm_per_acceptance" not in out  # 2 exams: no run


def test_the_pairwise_t_is_the_acceptance_test_for_every_pair():
    import numpy as np

    from tests.conftest import load_benchmark as load

    change_and_t = load("micro_acceptance").change_and_t
    rng = np.random.default_rng(0)
    values = rng.integers(0, 17, (5, 30)) / 16  # rates out of 16 samples, as the exam's
    values[3] = values[1] + 0.25  # a constant rise (exact in binary): no spread, t = +inf
    t = _load().pair_t(values)
    for a in range(5):
        for b in range(5):
            want = change_and_t(pd.Series(values[a]), [pd.Series(values[b])])[1]
            assert t[a, b] == pytest.approx(want, rel=1e-9), (a, b)
    assert t[1, 3] == np.inf and t[3, 1] == -np.inf and t[2, 2] == 0


def test_the_threshold_for_a_false_alarm_rate_is_the_matching_quantile_of_the_largest_t():
    import numpy as np

    noise = _load()
    largest = np.linspace(0, 10, 100_001)  # uniform largest t on [0, 10]
    per_run = 1 - 0.95 ** (1 / 3)  # 5% per acceptance of 3 independent runs
    assert noise.threshold_for(largest, 0.05) == pytest.approx(10 * (1 - per_run), abs=1e-3)
    assert 1 - (1 - (largest > noise.threshold_for(largest, 0.05)).mean()) ** 3 == pytest.approx(0.05, abs=1e-3)
