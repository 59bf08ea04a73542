"""Compare runs: overlaid curves and the final exams side by side, with a paired test.

    cmp = compare_runs("runs/a", "runs/b")     # or grpo-lab compare runs/a runs/b
    cmp.table                                   # final exam metrics, differences vs the first run, t
    cmp.figure                                  # the curves overlaid
    cmp.differences                             # config keys in which each run differs from the first

Why a paired test: two runs answer the same exam questions, so the difference of a metric is taken
question by question (its mean over the k samples of that question), and its t statistic is
mean / standard error over the questions. Question difficulty cancels out, which makes this far
more sensitive than comparing two pass@1 numbers, and |t| > 2 is roughly the 5% level for 30
questions. A difference within |t| ≤ 2 is within the exam's noise. Different seeds of one recipe
still differ by chance: compare against several seeds (grpo_lab.bands) before reading much into
one pair of runs.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from grpo_lab.tracking import load_run

FINAL_KEYS: tuple[str, ...] = ("pass@1", "cons@16", "pass@16", "mean_length", "reflection_rate", "format_rate")
"""Exam metrics in the table (those a run did not log are left out)."""
PAIRED_COLUMNS: tuple[str, ...] = ("pass@1", "mean_length", "reflection_rate")
"""Per-question columns (eval/questions_step*.csv) with a paired test."""
CURVES: tuple[tuple[str, str], ...] = (
    ("eval/pass@1", "exam pass@1"), ("eval/mean_length", "exam mean length"),
    ("eval/reflection_rate", "exam reflection rate"), ("reward", "training reward"),
)


@dataclass
class Comparison:
    """What `compare_runs` returns: the table, the figure and each run's config differences."""

    table: pd.DataFrame
    figure: Figure = field(repr=False)
    differences: dict[str, list[str]]

    def _repr_html_(self) -> str:  # a notebook shows the table when the object is the cell's value
        return self.table.to_html(float_format=lambda x: f"{x:.4g}")

    def to_text(self) -> str:
        lines = [self.table.to_string(float_format=lambda x: f"{x:.4g}")]
        for name, diff in self.differences.items():
            lines.append(f"{name} vs the first run: " + ("; ".join(diff) if diff else "same config (other than tracking)"))
        return "\n".join(lines)


def _last_exam(run_dir: Path) -> tuple[int, pd.DataFrame]:
    tables = {int(f.stem.removeprefix("questions_step")): f for f in (run_dir / "eval").glob("questions_step*.csv")}
    if not tables:
        raise FileNotFoundError(f"{run_dir}: no eval/questions_step*.csv (no exam was run?)")
    step = max(tables)
    return step, pd.read_csv(tables[step])


def paired_runs_change(run_a: str | Path, run_b: str | Path, column: str = "pass@1") -> dict[str, float]:
    """Change of a per-question exam metric from run a's last exam to run b's, paired over questions.

    Returns mean change, its standard error, t = mean / SE and the number of questions. Raises
    ValueError when the two exams do not hold the same questions in the same order.
    """
    (_, a), (_, b) = _last_exam(Path(run_a)), _last_exam(Path(run_b))
    if a["question"].tolist() != b["question"].tolist():
        raise ValueError(f"{run_a} and {run_b} were examined on different questions: no paired test")
    diff = (b[column].astype(float) - a[column].astype(float)).tolist()
    mean = statistics.fmean(diff)
    se = statistics.stdev(diff) / math.sqrt(len(diff)) if len(diff) > 1 else float("nan")
    t = mean / se if se > 0 else (0.0 if mean == 0 else math.inf)
    return {"mean_change": mean, "se": se, "t": t, "questions": len(diff)}


def _names(run_dirs: list[Path]) -> list[str]:
    names = [d.resolve().name for d in run_dirs]
    return names if len(set(names)) == len(names) else [str(d) for d in run_dirs]


def compare_runs(*run_dirs: str | Path, names: list[str] | None = None) -> Comparison:
    """Compare finished runs: final exam metrics, their differences from the first run, paired t.

    Table columns per run: each final exam metric (summary.json's "final", else the last exam
    logged), and for the 2nd, 3rd, ... run `Δ <metric>` (minus the first run) and, for pass@1, mean
    length and reflection rate, `t <metric>` (paired over exam questions; NaN if the exams differ).
    """
    if len(run_dirs) < 2:
        raise ValueError("compare_runs needs at least two run directories")
    dirs = [Path(d) for d in run_dirs]
    for d in dirs:
        if not (d / "metrics.jsonl").exists():
            raise FileNotFoundError(f"{d}: no metrics.jsonl (is it a grpo-lab run directory?)")
    names = names or _names(dirs)
    frames = {name: load_run(d) for name, d in zip(names, dirs)}
    rows = []
    for name in names:
        df = frames[name]
        final = dict(df.attrs["summary"].get("final") or {})
        exams = df[df["eval/pass@1"].notna()] if "eval/pass@1" in df.columns else df.iloc[0:0]
        last = exams.iloc[-1] if len(exams) else pd.Series(dtype=float)
        row: dict[str, float | str | int] = {"run": name, "exam step": int(last["step"]) if len(last) else -1}
        for key in FINAL_KEYS:
            value = final.get(key, last.get(f"eval/{key}", float("nan")))
            row[key] = float(value) if value is not None else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows).set_index("run")
    table = table.dropna(axis=1, how="all")
    first = names[0]
    for name, d in zip(names[1:], dirs[1:]):
        for key in FINAL_KEYS:
            if key in table.columns:
                table.loc[name, f"Δ {key}"] = table.loc[name, key] - table.loc[first, key]
        for column in PAIRED_COLUMNS:
            try:
                table.loc[name, f"t {column}"] = paired_runs_change(dirs[0], d, column)["t"]
            except (ValueError, FileNotFoundError, KeyError):
                table.loc[name, f"t {column}"] = float("nan")
    from grpo_lab.bands import fingerprint, recipe_differences

    def recipe(df: pd.DataFrame) -> dict:
        try:
            fp = dict(fingerprint(df.attrs["config"])) if df.attrs["config"] else {}
        except ValueError:  # not a grpo-lab config.yaml: compare the raw values
            fp = dict(df.attrs["config"])
        fp["grpo.seed"] = (df.attrs["config"].get("grpo") or {}).get("seed") if df.attrs["config"] else None
        return fp

    base = recipe(frames[first])
    differences = {name: recipe_differences(base, recipe(frames[name])) + _machine_differences(frames[first], frames[name])
                   for name in names[1:]}
    return Comparison(table=table, figure=plot_runs(frames), differences=differences)


def _machine_differences(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """What differs in the arithmetic two runs ran on (summary.json "machine"), as "machine.key: a vs b".

    Runs of the same config and seed are bitwise equal only with the same torch and kernel level
    (grpo_lab/cpu.py); with different ones they are two draws, and their gap is noise, not a
    change. Runs that did not record a machine give no line.
    """
    ma, mb = ((df.attrs.get("summary") or {}).get("machine") for df in (a, b))
    if not isinstance(ma, dict) or not isinstance(mb, dict):
        return []
    return [f"machine.{k}: {ma.get(k)!r} vs {mb.get(k)!r}" for k in ("torch", "torch_cpu_kernels", "gpu")
            if ma.get(k) != mb.get(k)]


def plot_runs(frames: dict[str, pd.DataFrame]) -> Figure:
    """Exam pass@1, mean length, reflection rate and training reward of several runs, overlaid."""
    from grpo_lab.plots import auto_window, smooth

    fig = Figure(figsize=(5.0 * len(CURVES), 4.0), layout="constrained")
    for ax, (key, title) in zip(fig.subplots(1, len(CURVES)), CURVES):
        for i, (name, df) in enumerate(frames.items()):
            if key not in df.columns or not df[key].notna().any():
                continue
            rows = df[df[key].notna()].sort_values("step")
            if key.startswith("eval/"):
                ax.plot(rows["step"], rows[key], "o-", color=f"C{i}", label=name)
            else:
                y = smooth(rows[key].astype(float).reset_index(drop=True), auto_window(len(rows)))
                ax.plot(rows["step"].reset_index(drop=True).loc[y.index], y, color=f"C{i}", label=f"{name} (EMA)")
        ax.set_title(title)
        ax.set_xlabel("RL step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    return fig
