"""R1-Zero-style figures from a run DataFrame (`grpo_lab.tracking.load_run`).

The DeepSeek-R1 paper shows two curves per RL step: (a) accuracy on AIME, pass@1 and cons@16,
and (b) the mean response length with a shaded band. The reproductions (SimpleRL-Zoo, Dr. GRPO,
oat-zero) add the length split by correct / incorrect answers and the reflection frequency.
Training metrics are noisy, so each is drawn raw (faint) with a smoothed curve on top; eval
metrics are sparse (every `eval.every` steps) and drawn as markers joined by lines.

Every function returns a `matplotlib.figure.Figure` and never calls `plt.show()`. Figures are
built with `Figure()` rather than `plt.subplots()` unless you pass `ax`: they then live outside
pyplot's global state, so a notebook shows a returned figure exactly once, nothing leaks across
calls, and any backend (including Agg on a headless machine) works. Pass `ax=` to draw a panel
into a figure of your own.

A column that is missing (or all NaN) is not an error: the panel says "no data for <key>".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

RAW_ALPHA = 0.25
"""Opacity of the raw training curve under its smoothed version."""
BAND_ALPHA = 0.15


def smooth(series: pd.Series, window: int) -> pd.Series:
    """Exponential moving average with span `window` (pandas `ewm(span=window)`).

    Why an EMA: it is trailing (no look-ahead, like TensorBoard's smoothing), starts at the
    first value instead of leaving `window - 1` NaNs, and weights recent steps most. NaNs (steps
    where the metric was not logged) are dropped first, so the result is indexed like the
    non-missing values. `window <= 1` returns the series unchanged (without NaNs).
    """
    s = pd.Series(series).dropna()
    if window <= 1 or s.empty:
        return s
    return s.ewm(span=window, adjust=True).mean()


def auto_window(n: int) -> int:
    """A smoothing window for n points: about a tenth of the run, at least 1."""
    return max(1, n // 10)


# --------------------------------------------------------------------------------------------
# helpers


def _new_ax(ax: Axes | None, figsize: tuple[float, float] = (6.0, 4.0)) -> Axes:
    if ax is not None:
        return ax
    return Figure(figsize=figsize, layout="constrained").add_subplot()


def _has(df: pd.DataFrame, key: str | None) -> bool:
    return key is not None and key in df.columns and bool(df[key].notna().any())


def _xy(df: pd.DataFrame, key: str) -> tuple[pd.Series, pd.Series]:
    """Steps and values of the rows where `key` was logged."""
    rows = df[df[key].notna()].sort_values("step")
    return rows["step"], rows[key].astype(float)


def _first_matching(df: pd.DataFrame, preferred: str, pattern: str) -> str | None:
    """`preferred` if it has data, else the first column matching the regex `pattern`."""
    if _has(df, preferred):
        return preferred
    return next((c for c in df.columns if re.fullmatch(pattern, str(c)) and _has(df, c)), None)


def _no_data(ax: Axes, keys: Sequence[str]) -> None:
    ax.text(
        0.5, 0.5, "no data for " + ", ".join(keys),
        ha="center", va="center", transform=ax.transAxes, color="gray",
    )


def _plot_training(ax: Axes, df: pd.DataFrame, key: str, label: str, color: str, window: int | None) -> None:
    """A noisy per-step metric: the raw curve faint, its EMA on top."""
    x, y = _xy(df, key)
    w = auto_window(len(y)) if window is None else window
    ax.plot(x, y, color=color, alpha=RAW_ALPHA, linewidth=1)
    ys = smooth(y, w)
    ax.plot(x.loc[ys.index], ys, color=color, linewidth=2, label=f"{label} (EMA {w})" if w > 1 else label)


def _plot_eval(ax: Axes, df: pd.DataFrame, key: str, label: str, color: str, marker: str = "o") -> None:
    """A sparse eval metric: markers joined by lines, no smoothing."""
    x, y = _xy(df, key)
    ax.plot(x, y, marker=marker, color=color, linewidth=1.5, markersize=5, label=label)


def _finish(ax: Axes, df: pd.DataFrame, title: str, ylabel: str, unit_interval: bool = False) -> Figure:
    name = df.attrs.get("name")
    ax.set_title(f"{title} ({name})" if name else title)
    ax.set_xlabel("RL step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    if unit_interval:
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    return ax.figure


# --------------------------------------------------------------------------------------------
# the panels


def plot_accuracy(df: pd.DataFrame, ax: Axes | None = None, window: int | None = None) -> Figure:
    """R1 Figure 2: eval pass@1 and cons@16 per step, plus the training accuracy reward.

    The training accuracy is `rewards/accuracy_reward/mean`, or else the first
    `rewards/*accuracy*/mean` column; an eval `cons@k` with another k is used if `cons@16`
    is absent (the exam's k is configurable).
    """
    ax = _new_ax(ax)
    pass1 = "eval/pass@1" if _has(df, "eval/pass@1") else None
    cons = _first_matching(df, "eval/cons@16", r"eval/cons@\d+")
    train = _first_matching(df, "rewards/accuracy_reward/mean", r"rewards/.*accuracy.*/mean")
    if train:
        _plot_training(ax, df, train, "train accuracy reward", "tab:gray", window)
    if pass1:
        _plot_eval(ax, df, pass1, "eval pass@1", "tab:blue", "o")
    if cons:
        _plot_eval(ax, df, cons, f"eval {cons.split('/')[-1]}", "tab:red", "s")
    if not (pass1 or cons or train):
        _no_data(ax, ["eval/pass@1", "eval/cons@16"])
    return _finish(ax, df, "Accuracy", "accuracy", unit_interval=True)


def plot_response_length(df: pd.DataFrame, ax: Axes | None = None, window: int | None = None) -> Figure:
    """R1 Figure 3: mean response length per step with a shaded band.

    The band is mean +/- `completions/std_length` when that is logged, else the range
    `completions/min_length` .. `completions/max_length` (TRL's names). Eval mean lengths are
    added as markers.
    """
    ax = _new_ax(ax)
    key = "completions/mean_length"
    if _has(df, key):
        rows = df[df[key].notna()].sort_values("step")
        if _has(df, "completions/std_length"):
            std = rows["completions/std_length"].astype(float)
            lo, hi, band = rows[key] - std, rows[key] + std, "mean ± std"
        elif _has(df, "completions/min_length") and _has(df, "completions/max_length"):
            lo, hi, band = rows["completions/min_length"], rows["completions/max_length"], "min..max"
        else:
            lo = hi = band = None
        if band is not None:
            ax.fill_between(rows["step"], lo.astype(float), hi.astype(float), color="tab:blue",
                            alpha=BAND_ALPHA, linewidth=0, label=band)
        _plot_training(ax, df, key, "train mean length", "tab:blue", window)
    if _has(df, "eval/mean_length"):
        _plot_eval(ax, df, "eval/mean_length", "eval mean length", "tab:orange", "o")
    if not (_has(df, key) or _has(df, "eval/mean_length")):
        _no_data(ax, [key])
    return _finish(ax, df, "Response length", "tokens per completion")


def plot_reflection(df: pd.DataFrame, ax: Axes | None = None, window: int | None = None) -> Figure:
    """Reflection ("aha") frequency per step: eval and training fraction of answers that reflect.

    Step 0 matters here: base models already reflect superficially (oat-zero), so the curve's
    start is the baseline, not zero.
    """
    ax = _new_ax(ax)
    train, ev = "phenomena/reflection_rate", "eval/reflection_rate"
    if _has(df, train):
        _plot_training(ax, df, train, "train reflection rate", "tab:gray", window)
    if _has(df, ev):
        _plot_eval(ax, df, ev, "eval reflection rate", "tab:purple", "o")
    if not (_has(df, train) or _has(df, ev)):
        _no_data(ax, [ev])
    return _finish(ax, df, "Reflection", "fraction of answers", unit_interval=True)


def plot_length_by_correctness(df: pd.DataFrame, ax: Axes | None = None, window: int | None = None) -> Figure:
    """Mean length of correct vs incorrect answers (Dr. GRPO: wrong answers grow longest).

    Training columns `completions/mean_length_{correct,incorrect}` are drawn raw + smoothed,
    eval columns `eval/mean_length_{correct,incorrect}` as markers; either or both may exist.
    """
    ax = _new_ax(ax)
    drawn = False
    for outcome, color in (("correct", "tab:green"), ("incorrect", "tab:red")):
        train, ev = f"completions/mean_length_{outcome}", f"eval/mean_length_{outcome}"
        if _has(df, train):
            _plot_training(ax, df, train, f"train {outcome}", color, window)
            drawn = True
        if _has(df, ev):
            _plot_eval(ax, df, ev, f"eval {outcome}", color, "o" if outcome == "correct" else "x")
            drawn = True
    if not drawn:
        _no_data(ax, ["completions/mean_length_correct", "completions/mean_length_incorrect"])
    return _finish(ax, df, "Length by correctness", "tokens per completion")


PANELS = (plot_accuracy, plot_response_length, plot_reflection, plot_length_by_correctness)
"""The R1-Zero panels, in the order `plot_r1_zero_figures` draws them."""


def plot_r1_zero_figures(df: pd.DataFrame, window: int | None = None) -> Figure:
    """All R1-Zero panels in a 2 × 2 grid: accuracy, response length / reflection, length by correctness.

    2 × 2 rather than a row of four so that each panel and its legend stay legible at a normal
    notebook width (about 10 inches at 100 dpi).
    """
    fig = Figure(figsize=(10.0, 7.0), layout="constrained")
    name = df.attrs.get("name")
    for ax, panel in zip(fig.subplots(2, 2).flat, PANELS):
        panel(df, ax=ax, window=window)
        if name:  # the run's name once, above the panels, rather than in every title
            ax.set_title(ax.get_title().removesuffix(f" ({name})"))
    if name:
        fig.suptitle(name)
    return fig


def compare_runs(dfs: dict[str, pd.DataFrame], key: str, window: int | None = None) -> Figure:
    """One metric across several runs (e.g. seeds, or a control beside the real run).

    `eval/...` keys are drawn as markers and lines, training keys raw (faint) + smoothed.
    To split a `load_runs` frame: `{name: g for name, g in df.groupby("run")}`.
    """
    ax = _new_ax(None, figsize=(7.0, 4.5))
    colors = [f"C{i}" for i in range(10)]
    drawn = False
    for i, (name, df) in enumerate(dfs.items()):
        if not _has(df, key):
            continue
        drawn = True
        if key.startswith("eval/"):
            _plot_eval(ax, df, key, name, colors[i % 10])
        else:
            _plot_training(ax, df, key, name, colors[i % 10], window)
    if not drawn:
        _no_data(ax, [key])
    ax.set_title(key)
    ax.set_xlabel("RL step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize="small")
    return ax.figure


class LivePlot:
    """A trainer callback that shows a run as it trains: a progress line and the R1-Zero curves.

    In a notebook it keeps two outputs up to date in place: a line with the step, reward,
    accuracy, response length, reflection rate, seconds per step and the time left (every step,
    and each exam's pass@1 when it lands), and the four panels of `plot_r1_zero_figures`
    (at the first step, every `every` steps and the last). Both stay when the run ends, so the
    cell keeps its record; `keep_figure=False` clears the curves when the run ends and keeps the
    line (a notebook that trains many runs and compares them afterwards, as 07 does, would
    otherwise carry a figure per run). Outside Jupyter (no IPython kernel) it only collects `rows`,
    so the same code runs in scripts. `GRPOTrainer(cfg, callbacks=[LivePlot(every=10, total=cfg.grpo.steps)])`.
    """

    def __init__(self, every: int = 10, window: int = 10, total: int | None = None, keep_figure: bool = True):
        self.every, self.window, self.total = max(1, every), window, total
        self.keep_figure = keep_figure
        self.rows: list[dict] = []
        self._start: tuple[float, int] | None = None  # (time, step) of the first step seen
        self._line = self._exam = ""  # the last progress line, and the last exam's result
        self._text = self._figure = None
        try:
            from IPython import get_ipython

            self.active = get_ipython() is not None and "IPKernelApp" in get_ipython().config
        except ImportError:
            self.active = False

    def on_step_end(self, trainer, step: int, metrics: dict) -> None:
        import time

        self.rows.append({"step": step, **metrics})
        now = time.perf_counter()
        if self._start is None:
            self._start = (now, step - 1)  # the first step's own time is not measured here
        if not self.active:
            return
        self._line = self.progress_line(step, metrics, now)
        self._show_text(self._line + self._exam)
        last = self.total is not None and step >= self.total
        if step == self._start[1] + 1 or step % self.every == 0 or last:
            self._draw()

    def on_evaluate(self, trainer, step: int, result) -> None:
        self.rows.append({"step": step, **{f"eval/{k}": v for k, v in result.metrics.items()}})
        self._exam = f" · exam at step {step}: pass@1 {result.metrics.get('pass@1', float('nan')):.3f}"
        if self.active and self._line:
            self._show_text(self._line + self._exam)

    def on_train_end(self, trainer) -> None:
        if self.active and self.rows:
            self._show_text(f"{self._line}{self._exam} · finished")
            if self.keep_figure:
                self._draw()  # the last state stays in the cell's output
            elif self._figure is not None:
                self._figure.update({"text/plain": ""}, raw=True)

    def progress_line(self, step: int, metrics: dict, now: float) -> str:
        """'step 120/500 · reward 0.62 · accuracy 0.55 · length 45 · reflection 0.30 · 1.9 s/step · ≈ 12 min left'."""
        total = f"/{self.total}" if self.total else ""
        parts = [f"step {step}{total}"]
        for key, label, fmt in (("reward", "reward", ".2f"), ("accuracy", "accuracy", ".2f"),
                                ("completions/mean_length", "length", ".0f"),
                                ("phenomena/reflection_rate", "reflection", ".2f")):
            if key in metrics:
                parts.append(f"{label} {metrics[key]:{fmt}}")
        t0, s0 = self._start if self._start else (now, step)
        if step > s0 + 1 and now > t0:
            per_step = (now - t0) / (step - s0 - 1)  # exams and checkpoints included, as they will recur
            parts.append(f"{per_step:.1f} s/step")
            if self.total:
                parts.append(f"≈ {per_step * (self.total - step) / 60:.1f} min left")
        return " · ".join(parts)

    def _show_text(self, text: str) -> None:
        from IPython.display import display

        if self._text is None:
            self._text = display({"text/plain": text}, raw=True, display_id=True)
        else:
            self._text.update({"text/plain": text}, raw=True)

    def _draw(self) -> None:
        from IPython.display import display

        df = pd.DataFrame(self.rows).groupby("step").last().reset_index()
        fig = plot_r1_zero_figures(df, window=self.window)
        fig.set_size_inches(9.0, 6.0)
        if self._figure is None:
            self._figure = display(fig, display_id=True)
        else:
            self._figure.update(fig)
