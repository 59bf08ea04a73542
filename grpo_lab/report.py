"""A one-page markdown report for a run directory: R1-Zero figures, a summary table, samples.

`write_report("runs/demo")` writes::

    runs/demo/report.md
    runs/demo/figures/{accuracy,response_length,reflection,length_by_correctness,r1_zero,band}.png

The report also says whether the run is normal: where each exam sits relative to the shipped
reference band of its recipe (grpo_lab/bands.py; or which recipe keys differ from the reference's),
which run-health checks fired (grpo_lab/health.py), and where its offline wandb runs are.

Figures go to a `figures/` subdirectory so the run directory stays readable; report.md links
them with relative paths, so the directory can be zipped or committed and still render.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from grpo_lab import plots
from grpo_lab.tracking import load_completions, load_run

REPORT_EVAL_KEYS: tuple[str, ...] = (
    "eval/pass@1",
    "eval/cons@16",
    "eval/pass@16",
    "eval/mean_length",
    "eval/reflection_rate",
    "eval/format_rate",
)
"""The eval metrics compared before vs after training in the report's table."""

REPORT_TRAIN_KEYS: tuple[str, ...] = ("reward", "completions/mean_length", "phenomena/reflection_rate", "kl")

FIGURES: dict[str, Callable[[pd.DataFrame], Figure]] = {
    "accuracy.png": plots.plot_accuracy,
    "response_length.png": plots.plot_response_length,
    "reflection.png": plots.plot_reflection,
    "length_by_correctness.png": plots.plot_length_by_correctness,
    "r1_zero.png": plots.plot_r1_zero_figures,
}

MAX_SAMPLES = 3
MAX_SAMPLE_CHARS = 2000
"""Completions longer than this are cut in the report (the full text stays in completions.jsonl)."""


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4g}"


def _first_last(df: pd.DataFrame, key: str) -> tuple[tuple[int, float] | None, tuple[int, float] | None]:
    """(step, value) of the first and last rows where `key` was logged."""
    if key not in df.columns or not df[key].notna().any():
        return None, None
    rows = df[df[key].notna()].sort_values("step")
    first, last = rows.iloc[0], rows.iloc[-1]
    return (int(first["step"]), float(first[key])), (int(last["step"]), float(last[key]))


def summary_rows(
    df: pd.DataFrame, keys: tuple[str, ...] = REPORT_EVAL_KEYS, use_summary: bool = True
) -> list[dict[str, Any]]:
    """First vs last value of each metric, with difference and ratio.

    `summary.json`'s `step0` / `final` dicts (see `RunLogger.summary`), when they hold the
    metric, take precedence over the first / last logged values: they may come from a larger
    final evaluation than the periodic ones. Pass `use_summary=False` for training metrics.
    Metrics never logged are left out; the ratio is None when the first value is 0.
    """
    summary = (df.attrs.get("summary") or {}) if use_summary else {}
    step0, final = summary.get("step0") or {}, summary.get("final") or {}
    rows = []
    for key in keys:
        first, last = _first_last(df, key)
        first_step, first_value = (first if first else (None, None))
        last_step, last_value = (last if last else (None, None))
        if key in step0:
            first_step, first_value = "step0", float(step0[key])
        if key in final:
            last_step, last_value = "final", float(final[key])
        if first_value is None and last_value is None:
            continue
        diff = ratio = None
        if first_value is not None and last_value is not None:
            diff = last_value - first_value
            ratio = last_value / first_value if first_value != 0 else None
        rows.append({"metric": key, "first_step": first_step, "first": first_value,
                     "last_step": last_step, "last": last_value, "diff": diff, "ratio": ratio})
    return rows


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| metric | first (step) | last (step) | last − first | last / first |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        first = f"{_fmt(r['first'])} ({r['first_step']})" if r["first"] is not None else "—"
        last = f"{_fmt(r['last'])} ({r['last_step']})" if r["last"] is not None else "—"
        ratio = f"{r['ratio']:.2f}×" if r["ratio"] is not None else "—"
        diff = f"{r['diff']:+.4g}" if r["diff"] is not None else "—"
        lines.append(f"| `{r['metric']}` | {first} | {last} | {diff} | {ratio} |")
    return lines


def _fenced(text: str) -> list[str]:
    """A code block whose fence is longer than any backtick run inside the text."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "text", text, fence]


def _sample_lines(run_dir: Path) -> list[str]:
    """Up to MAX_SAMPLES completions from the last step that logged any."""
    if not (run_dir / "completions.jsonl").exists():
        return ["_No completions were logged._"]
    comps = load_completions(run_dir)
    if comps.empty:
        return ["_No completions were logged._"]
    last = comps[comps["step"] == comps["step"].max()].head(MAX_SAMPLES)
    lines: list[str] = []
    for i, (_, row) in enumerate(last.iterrows(), start=1):
        meta = [f"step {int(row['step'])}"]
        for key in ("reward", "length"):
            if key in row and pd.notna(row[key]):
                meta.append(f"{key} {_fmt(float(row[key]))}")
        lines += [f"### Sample {i} ({', '.join(meta)})", ""]
        if "prompt" in row and pd.notna(row["prompt"]):
            lines += ["**Prompt**", "", *_fenced(str(row["prompt"])), ""]
        completion = str(row.get("completion", ""))
        if len(completion) > MAX_SAMPLE_CHARS:
            completion = completion[:MAX_SAMPLE_CHARS] + f"\n… [cut at {MAX_SAMPLE_CHARS} characters]"
        lines += ["**Completion**", "", *_fenced(completion), ""]
    return lines


def write_report(run_dir: str | Path, *, dpi: int = 100) -> Path:
    """Write `figures/*.png` and `report.md` into `run_dir`; return the report's path.

    A file inside a run directory (e.g. RUN/metrics.jsonl) stands for its directory.
    """
    run_dir = Path(run_dir)
    if run_dir.is_file():
        run_dir = run_dir.parent
    df = load_run(run_dir)
    fig_dir = run_dir / "figures"
    fig_dir.mkdir(exist_ok=True)
    for filename, draw in FIGURES.items():
        draw(df).savefig(fig_dir / filename, dpi=dpi)

    name = df.attrs["name"]
    steps = f"steps {int(df['step'].min())}–{int(df['step'].max())}" if len(df) else "no steps logged"
    lines = [f"# Run report: {name}", "", f"Run directory `{run_dir}`, {len(df)} logged steps ({steps}).", ""]
    summary = df.attrs.get("summary") or {}
    if isinstance(summary.get("machine"), dict):  # runs before 2026-12-03 did not record it
        lines += [_machine_line(summary["machine"]) + " The same seed repeats this run bit for bit only with the "
                  "same torch and kernel level.", ""]
        if isinstance(summary.get("machine_on_resume"), dict):
            lines += [f"Resumed elsewhere: {_machine_line(summary['machine_on_resume'])} Its bits mix the two "
                      "machines' arithmetic.", ""]

    lines += ["## Evaluation: first vs last", ""]
    # The exam's k is configurable: also report any other cons@k / pass@k that was logged.
    extra = tuple(sorted(c for c in df.columns if re.fullmatch(r"eval/(pass|cons)@\d+", str(c))
                         and c not in REPORT_EVAL_KEYS))
    eval_rows = summary_rows(df, REPORT_EVAL_KEYS + extra)
    lines += _table(eval_rows) if eval_rows else ["_No evaluation metrics were logged._"]
    lines.append("")
    train_rows = summary_rows(df, REPORT_TRAIN_KEYS, use_summary=False)
    if train_rows:
        lines += ["## Training: first vs last step", "", *_table(train_rows), ""]

    lines += _normal_lines(run_dir, df, fig_dir, dpi)

    lines += ["## Figures", "", "![R1-Zero panels](figures/r1_zero.png)", ""]
    lines += [f"- [{f.removesuffix('.png').replace('_', ' ')}](figures/{f})" for f in FIGURES if f != "r1_zero.png"]
    lines += ["", "## Sample completions", "", *_sample_lines(run_dir)]

    report = run_dir / "report.md"
    report.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return report


def _machine_line(machine: dict[str, Any]) -> str:
    """Where a run's arithmetic ran (summary.json "machine"): the same seed gives the same bits only there."""
    where = f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores"
    if machine.get("gpu"):
        where = f"{machine['gpu']} ({where})"
    return f"Ran on {where}; torch {machine.get('torch', '?')}, CPU kernels {machine.get('torch_cpu_kernels', '?')}."


def _normal_lines(run_dir: Path, df: pd.DataFrame, fig_dir: Path, dpi: int) -> list[str]:
    """The "is this run normal?" section: reference band per phenomenon, health checks, wandb files."""
    from grpo_lab.bands import band_summary_lines, plot_band
    from grpo_lab.health import CHECKS, run_alerts
    from grpo_lab.tracking import offline_wandb_runs

    lines = ["## Is this run normal?", "", "### Against the reference band", "", *band_summary_lines(df), ""]
    try:
        figure = plot_band(df) if df.attrs.get("config") else None
    except ValueError:  # not a grpo-lab config: already said in the lines above
        figure = None
    if figure is not None:
        figure.savefig(fig_dir / "band.png", dpi=dpi)
        lines += ["![run over the reference band](figures/band.png)", ""]
    alerts = run_alerts(run_dir) if (run_dir / "metrics.jsonl").exists() else []
    lines += ["### Run health", ""]
    if not alerts:
        lines.append(f"No health check fired ({', '.join(CHECKS)}).")
    for a in alerts:
        c = CHECKS[a["check"]]
        lines += [f"- **{c.title}** (`{a['check']}`, step {a['step']}: {a['condition']}). {c.meaning[0].upper()}"
                  f"{c.meaning[1:]}. Try: {c.advice}."]
    offline = offline_wandb_runs(run_dir)
    if offline:
        lines += ["", "### wandb", "", "Offline wandb run(s), to upload with `wandb sync PATH`:", "",
                  *[f"- `{p}`" for p in offline]]
    return lines + [""]


def paired_exam_change(run_dir: str | Path, column: str = "pass@1", start: int | str = "first",
                       end: int | str = "last") -> dict[str, float]:
    """How much a per-question exam metric moved between two exams of a run, paired over questions.

    Reads the per-question tables the trainer writes (eval/questions_step*.csv). Returns the mean
    change, its standard error and t = mean / SE over the exam's questions (a paired t statistic:
    |t| > 2 is roughly the 5% level for 30 questions), with the number of questions. Why paired:
    the same questions are asked at both exams, so question difficulty cancels out of the change.
    """
    files = {int(f.stem.removeprefix("questions_step")): f
             for f in sorted((Path(run_dir) / "eval").glob("questions_step*.csv"))}
    if not files:
        raise FileNotFoundError(f"no per-question exam tables in {Path(run_dir) / 'eval'}")
    def pick(which: int | str) -> int:
        return min(files) if which == "first" else max(files) if which == "last" else int(which)

    a, b = pd.read_csv(files[pick(start)]), pd.read_csv(files[pick(end)])
    if column not in a.columns:
        raise KeyError(f"{files[pick(start)]}: no column {column!r}; columns: {list(a.columns)}")
    diff = (b[column] - a[column]).tolist()
    mean = statistics.fmean(diff)
    se = statistics.stdev(diff) / math.sqrt(len(diff)) if len(diff) > 1 else float("nan")
    t = mean / se if se > 0 else (0.0 if mean == 0 else math.inf)
    return {"start_step": pick(start), "end_step": pick(end), "start": float(a[column].mean()),
            "end": float(b[column].mean()), "mean_change": mean, "se": se, "t": t, "questions": len(diff)}
