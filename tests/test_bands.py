"""Reference bands (grpo_lab/bands.py): a run is held against the shipped reference of its recipe,
per phenomenon and exam, and a run with another recipe is told which keys differ instead."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from grpo_lab import load_run
from grpo_lab.bands import (
    RecipeMismatch,
    available_references,
    band_summary_lines,
    compare_to_band,
    fingerprint,
    load_reference,
    make_reference,
    plot_band,
    recipe_differences,
)
from grpo_lab.cli import packaged_config
from grpo_lab.config import load_config


def fake_run(run_dir: Path, seed: int, pass1: dict[int, float], overrides: list[str] = ()) -> Path:
    """A run directory as the trainer writes it (config.yaml, metrics.jsonl, per-question exam tables)."""
    cfg = load_config(packaged_config("micro_r1_zero"), [f"grpo.seed={seed}", *overrides])
    (run_dir / "eval").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    lines = []
    for step, p in pass1.items():
        # 30 questions: a spread around the exam mean, so the exam has a standard error
        q = pd.DataFrame({"question": [f"q{i}" for i in range(30)], "pass@1": [p + (i % 3 - 1) * 0.1 for i in range(30)],
                          "mean_length": [20.0 + step / 10 + i % 2 for i in range(30)],
                          "reflection_rate": [0.5] * 30})
        q.to_csv(run_dir / "eval" / f"questions_step{step:06d}.csv", index=False)
        lines.append({"step": step, "eval/pass@1": float(q["pass@1"].mean()),
                      "eval/mean_length": float(q["mean_length"].mean()), "eval/reflection_rate": 0.5})
        if step:
            lines += [{"step": s, "reward": p, "kl": 0.01, "entropy": 0.2, "completions/clipped_ratio": 0.0,
                       "frac_reward_zero_std": 0.1, "loss": 0.0, "grad_norm": 0.1}
                      for s in range(step - 9, step + 1)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sorted(lines, key=lambda r: r["step"])))
    (run_dir / "summary.json").write_text(json.dumps({"final": {}}))
    return run_dir


@pytest.fixture
def reference(tmp_path):
    runs = [fake_run(tmp_path / f"ref{s}", s, {0: 0.2, 50: 0.4 + 0.02 * s, 100: 0.6}) for s in range(3)]
    return make_reference("micro_r1_zero", runs)


def test_band_is_the_seed_range_widened_by_two_exam_standard_errors(reference):
    band = reference.band("pass@1").set_index("step")
    assert band.loc[50, "min"] == pytest.approx(0.4) and band.loc[50, "max"] == pytest.approx(0.44)
    se = band.loc[50, "se"]
    assert se > 0 and band.loc[50, "low"] == pytest.approx(0.4 - 2 * se)
    assert band.loc[50, "high"] == pytest.approx(0.44 + 2 * se)


def test_a_run_is_placed_below_within_or_above_the_band_at_each_exam(reference, tmp_path):
    run = load_run(fake_run(tmp_path / "mine", 7, {0: 0.2, 50: 0.9, 100: 0.05}))
    table = compare_to_band(run, reference)
    acc = table[table.phenomenon == "accuracy"].set_index("step")["position"].to_dict()
    assert acc == {0: "within", 50: "above", 100: "below"}
    text = "\n".join(band_summary_lines_for(run, reference))
    assert "accuracy at step 50 (above)" in text and "accuracy at step 100 (below)" in text


def band_summary_lines_for(run, reference):
    """band_summary_lines matches the shipped references; here the reference is the fixture's."""
    import grpo_lab.bands as bands

    original = bands.compare_to_band
    bands.compare_to_band = lambda df: original(df, reference)
    try:
        return band_summary_lines(run)
    finally:
        bands.compare_to_band = original


def test_another_recipe_is_told_the_keys_that_differ_instead_of_being_compared(reference, tmp_path):
    run = load_run(fake_run(tmp_path / "other", 0, {0: 0.2}, ["grpo.lr=0.001", "grpo.beta=0.0"]))
    with pytest.raises(RecipeMismatch, match=r"differs from the reference's recipe \(micro_r1_zero\): grpo.beta: 0.0 vs "
                                             r"0.04; grpo.lr: 0.001 vs 0.00015"):
        compare_to_band(run, reference)
    fig = plot_band(run, reference)
    assert "Not compared" in fig.texts[0].get_text() and not fig.axes


def test_seed_steps_exam_size_and_logging_are_not_part_of_the_recipe():
    base = fingerprint(load_config(packaged_config("micro_r1_zero")).to_dict())
    other = fingerprint(load_config(packaged_config("micro_r1_zero"), [
        "grpo.seed=5", "grpo.steps=6", "eval.k=4", "eval.every=3", "tracking.run_dir=x", "health.patience=2",
        "eval.watch=[4]"]).to_dict())
    assert base == other
    assert fingerprint(load_config(packaged_config("micro_r1_zero"), ["grpo.lr=1e-3"]).to_dict()) != base


def test_runs_of_different_recipes_cannot_make_one_reference(tmp_path):
    a = fake_run(tmp_path / "a", 0, {0: 0.2})
    b = fake_run(tmp_path / "b", 1, {0: 0.2}, ["grpo.beta=0.0"])
    with pytest.raises(ValueError, match="not the same recipe.*grpo.beta"):
        make_reference("x", [a, b])


def test_reference_round_trips_through_json(reference, tmp_path):
    path = tmp_path / "ref.json"
    path.write_text(reference.to_json())
    again = load_reference(path)
    assert again.band("pass@1").equals(reference.band("pass@1"))
    assert again.train_band("reward")["mean"].notna().all()


@pytest.mark.parametrize("name", ["micro_r1_zero", "micro_coin_flip"])
def test_shipped_references_match_their_packaged_recipe_and_every_exam(name):
    """If the packaged recipe changes, the shipped band no longer describes it: regenerate it
    (benchmarks/make_reference_bands.py) rather than compare runs against a stale band."""
    assert name in available_references()
    ref = load_reference(name)
    assert recipe_differences(ref.fingerprint, fingerprint(load_config(packaged_config(name)).to_dict()), recipe_only=True) == []
    for exam in ref.exams.values():
        assert exam["step"] == list(range(0, 501, 50))  # every exam of the 500-step recipe
    assert (Path(__file__).parents[1] / "grpo_lab" / "reference_runs" / f"{name}.json").stat().st_size < 100_000


def test_the_demo_seed_0_run_lies_within_its_band():
    """A reference run against its own band: every exam within (the band contains its seeds)."""
    ref = load_reference("micro_r1_zero")
    seed = next(iter(ref.exams))
    exam = ref.exams[seed]
    cfg = load_config(packaged_config("micro_r1_zero")).to_dict()
    rows = [{"step": s, "eval/pass@1": p, "eval/mean_length": n, "eval/reflection_rate": r}
            for s, p, n, r in zip(exam["step"], exam["pass@1"], exam["mean_length"], exam["reflection_rate"])]
    df = pd.DataFrame(rows)
    df.attrs["config"] = cfg
    table = compare_to_band(df)
    assert len(table) == 3 * len(rows) and set(table.position) == {"within"}
