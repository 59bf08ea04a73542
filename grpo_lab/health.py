"""Run-health checks: is this run silently getting no learning signal?

A GRPO run can look busy (steps tick, losses print) while learning nothing: every completion is cut
at the length cap, every group's rewards are equal (zero advantage, zero gradient), the format
reward never leaves zero, the answers cannot even be parsed, the policy's entropy collapses, or
the KL to the reference explodes. Each of these is a named check on every step's metrics, with its
threshold in the config (`health:`, grpo_lab.config.HealthConfig). A check fires when its condition
holds for `health.patience` steps in a row (non-finite values fire at once), and fires once per
run, with what it means and what to try.

Where the alerts go: `HealthMonitor.check` returns them (the trainer shows them in the progress
bar and warns), `RunLogger.log_health` writes them to the run's `events.jsonl` and to wandb (an
alert where online, a logged `health/<check>` value and a summary entry offline). For a finished
run, `health_report(run_dir)` gives one row per check; it reads `events.jsonl`, or replays the
checks over `metrics.jsonl` for runs made before the checks existed.

    monitor = HealthMonitor(cfg.health)
    for step, metrics in ...:
        for alert in monitor.check(step, metrics):
            print(alert.message())
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from grpo_lab.config import Config, HealthConfig
from grpo_lab.rewards import unparsed_ratio

__all__ = ["CHECKS", "HealthAlert", "HealthMonitor", "HealthWarning", "check_records", "health_report",
           "run_alerts", "unparsed_ratio"]


class HealthWarning(UserWarning):
    """A run-health check fired (the run may be learning nothing); see grpo_lab/health.py."""


@dataclass(frozen=True)
class Check:
    """One named check: what firing means and what to try."""

    name: str
    title: str
    meaning: str
    advice: str


CHECKS: dict[str, Check] = {c.name: c for c in (
    Check("truncated", "completions truncated at the length cap",
          "most completions stop at grpo.max_new_tokens before they finish: they never reach an "
          "<answer>, so they earn no accuracy or format reward and teach the model little",
          "raise grpo.max_new_tokens (and eval.max_new_tokens), or check that the stop strings "
          "(grpo.stop_strings) and EOS are ones the model can write"),
    Check("no_signal", "groups with no reward spread",
          "in most groups all G completions got the same reward, so their advantages are 0 and the "
          "step has (almost) no gradient: the task is too hard or too easy for the model",
          "use easier (or harder) prompts, a larger grpo.group_size, a denser reward (e.g. soft_format), "
          "or check that the reward functions can score this model's output at all"),
    Check("format_stuck", "format reward stuck at zero",
          "not one completion earned the format reward for many steps: the model never writes the "
          "layout the reward asks for, so that reward gives no signal",
          "show the model the layout (a template that prefills <think>, e.g. data.template r1_chat_think), "
          "use soft_format for partial credit, or run grpo-lab check-rewards on the config"),
    Check("unparsed", "answers that cannot be parsed",
          "most completions have no answer the grader can read (no <answer> tag, an empty one, or "
          "text that is not math): they are scored 0 like wrong answers, but the problem is the "
          "format or the length cap, not the arithmetic",
          "look at a few completions (completions.jsonl), check the template and the answer tags, "
          "and run grpo-lab check-rewards on the config"),
    Check("entropy_collapse", "entropy collapse",
          "the policy's per-token entropy fell to a small fraction of its start: it samples nearly "
          "the same completion every time, so groups stop differing and exploration ends",
          "lower grpo.lr, raise grpo.beta (KL to the reference) or grpo.temperature, or stop at an "
          "earlier checkpoint"),
    Check("kl_blowup", "KL blow-up",
          "the per-token KL to the reference policy is large: the policy has moved far from the base "
          "model, often into degenerate text that games the reward",
          "lower grpo.lr or grpo.max_grad_norm, raise grpo.beta, and read recent completions"),
    Check("nonfinite", "non-finite values",
          "a loss, gradient, reward, KL or entropy was NaN/inf (the step was skipped, see "
          "grpo.max_nonfinite_steps; a few in a row stop the run), or an optimizer step made the "
          "weights NaN/inf (the run stops at once)",
          "lower grpo.lr or grpo.max_grad_norm, use float32 (model.dtype), and check the reward functions"),
)}
"""Every check, by name (the `health/<name>` keys in wandb and the `check` field in events.jsonl)."""

NONFINITE_KEYS = ("loss", "grad_norm", "reward", "kl", "entropy")
"""Metrics that must be finite every step (others, e.g. the mean length of correct answers, are
legitimately NaN when there are none)."""


@dataclass
class HealthAlert:
    """One fired check: where, the value that fired it, and the advice."""

    check: str
    step: int
    value: float
    threshold: float
    condition: str
    """What held, e.g. "completions/clipped_ratio 0.97 > 0.5 for 10 steps"."""

    @property
    def title(self) -> str:
        return CHECKS[self.check].title

    def message(self) -> str:
        c = CHECKS[self.check]
        return (f"run health: {c.title} (step {self.step}: {self.condition}). What it means: {c.meaning}. "
                f"What to try: {c.advice}.")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "title": self.title, "message": self.message()}


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value


class HealthMonitor:
    """Runs every check on each step's metrics; each check fires once.

    Args:
        health: the thresholds (`config.health`).
        on_alert: called with each new alert (the trainer passes `RunLogger.log_health`).
        warn: also issue a `HealthWarning` per alert (what a script or notebook user sees).
    """

    def __init__(self, health: HealthConfig | None = None, on_alert: Callable[[HealthAlert], Any] | None = None,
                 warn: bool = True):
        self.health = health or HealthConfig()
        self.on_alert = on_alert
        self.warn = warn
        self.alerts: list[HealthAlert] = []
        self._streak: dict[str, int] = {}
        self._entropy_start: list[float] = []

    @property
    def fired(self) -> set[str]:
        return {a.check for a in self.alerts}

    def replay(self, records: Iterable[dict[str, Any]]) -> None:
        """Feed earlier steps (e.g. metrics.jsonl up to a resumed checkpoint) without reporting them again."""
        on_alert, warn = self.on_alert, self.warn
        self.on_alert, self.warn = None, False
        try:
            for record in records:
                if "reward" in record or "loss" in record:  # a training line, not an exam line
                    self.check(int(record["step"]), record)
        finally:
            self.on_alert, self.warn = on_alert, warn

    def status(self) -> str:
        """Short text for the progress bar: "ok" or the names of the checks that fired."""
        return ",".join(sorted(self.fired)) if self.alerts else "ok"

    def check(self, step: int, metrics: dict[str, Any]) -> list[HealthAlert]:
        """Run every check on one step's training metrics; return the checks that fired now."""
        if not self.health.enabled:
            return []
        h = self.health
        new: list[HealthAlert] = []

        def streak(name: str, holds: bool, value: float, threshold: float, condition: str, needed: int) -> None:
            self._streak[name] = self._streak.get(name, 0) + 1 if holds else 0
            if self._streak[name] >= needed and name not in self.fired | {a.check for a in new}:
                new.append(HealthAlert(name, int(step), float(value), float(threshold), condition))

        clipped = _finite(metrics.get("completions/clipped_ratio"))
        if clipped is not None and not math.isnan(clipped):
            streak("truncated", clipped > h.max_clipped_ratio, clipped, h.max_clipped_ratio,
                   f"completions/clipped_ratio {clipped:.3g} > {h.max_clipped_ratio} for {h.patience} steps",
                   h.patience)
        zero_std = _finite(metrics.get("frac_reward_zero_std"))
        if zero_std is not None and not math.isnan(zero_std):
            streak("no_signal", zero_std > h.max_zero_std_fraction, zero_std, h.max_zero_std_fraction,
                   f"frac_reward_zero_std {zero_std:.3g} > {h.max_zero_std_fraction} for {h.patience} steps",
                   h.patience)
        formats = [_finite(v) for k, v in metrics.items() if k.startswith("rewards/") and "format" in k
                   and k.endswith("/mean")]
        formats = [v for v in formats if v is not None and not math.isnan(v)]
        if formats:
            best = max(formats)
            streak("format_stuck", best == 0.0, best, 0.0,
                   f"every format reward's mean was 0 for {h.format_stuck_steps} steps", h.format_stuck_steps)
        unparsed = _finite(metrics.get("completions/unparsed_ratio"))
        if unparsed is not None and not math.isnan(unparsed):
            streak("unparsed", unparsed > h.max_unparsed_ratio, unparsed, h.max_unparsed_ratio,
                   f"completions/unparsed_ratio {unparsed:.3g} > {h.max_unparsed_ratio} for {h.patience} steps",
                   h.patience)
        entropy = _finite(metrics.get("entropy"))
        if entropy is not None and math.isfinite(entropy):
            if len(self._entropy_start) < h.patience:
                self._entropy_start.append(entropy)
            else:
                start = sum(self._entropy_start) / len(self._entropy_start)
                limit = h.entropy_collapse_fraction * start
                streak("entropy_collapse", entropy < limit, entropy, limit,
                       f"entropy {entropy:.3g} < {h.entropy_collapse_fraction} × its start {start:.3g} "
                       f"for {h.patience} steps", h.patience)
        kl = _finite(metrics.get("kl"))
        if kl is not None and math.isfinite(kl):
            streak("kl_blowup", kl > h.max_kl, kl, h.max_kl, f"kl {kl:.3g} > {h.max_kl} for {h.patience} steps",
                   h.patience)
        bad = [k for k in NONFINITE_KEYS if k in metrics and (v := _finite(metrics[k])) is not None
               and not math.isfinite(v)]
        skipped = _finite(metrics.get("nonfinite_skipped")) or 0.0
        weights = _finite(metrics.get("nonfinite_weights")) or 0.0  # the trainer stops the run on these
        if bad or skipped > 0 or weights > 0:
            if weights > 0:
                what = "trainable weights became NaN/inf in the optimizer step (training stopped)"
            else:
                what = (", ".join(bad) if bad else "the loss or gradient") + " not finite (step skipped)"
            streak("nonfinite", True, float("nan"), 0.0, what, 1)

        for alert in new:
            self.alerts.append(alert)
            if self.warn:
                warnings.warn(alert.message(), HealthWarning, stacklevel=2)
            if self.on_alert is not None:
                self.on_alert(alert)
        return new

    @classmethod
    def attach(cls, logger, config: Config) -> HealthMonitor:
        """A monitor that reports to `logger` (a RunLogger), caught up with the steps it already holds.

        On a resume the logger's metrics.jsonl holds the steps up to the checkpoint: they are replayed
        silently, so a check that fired before the crash is not raised again and streaks continue.
        """
        from grpo_lab.tracking import read_jsonl

        monitor = cls(config.health, on_alert=logger.log_health)
        if logger.metrics_path.exists():
            monitor.replay(read_jsonl(logger.metrics_path))
        return monitor


def check_records(records: Iterable[dict[str, Any]], health: HealthConfig | None = None) -> list[HealthAlert]:
    """Every alert the checks raise over a sequence of metrics lines (silently: no warnings)."""
    monitor = HealthMonitor(health, warn=False)
    monitor.replay(sorted((r for r in records if "step" in r), key=lambda r: r["step"]))
    return monitor.alerts


def run_alerts(run_dir: str | Path) -> list[dict[str, Any]]:
    """The alerts of a run: its events.jsonl, or (older runs) the checks replayed over metrics.jsonl."""
    from grpo_lab.tracking import read_jsonl

    run_dir = Path(run_dir)
    events = run_dir / "events.jsonl"
    if events.exists():
        return [e for e in read_jsonl(events) if e.get("kind") == "health"]
    config = Config()
    config_path = run_dir / "config.yaml"
    if config_path.exists():
        import yaml

        try:
            config = Config.from_dict(yaml.safe_load(config_path.read_text(encoding="utf-8")) or {},
                                      source=str(config_path))
        except ValueError:  # not a grpo-lab config (e.g. a run logged by hand): the default thresholds
            config = Config()
    return [a.to_dict() for a in check_records(read_jsonl(run_dir / "metrics.jsonl"), config.health)]


CHECK_METRICS: dict[str, str] = {
    "truncated": "completions/clipped_ratio", "no_signal": "frac_reward_zero_std", "format_stuck": "rewards/*format*/mean",
    "unparsed": "completions/unparsed_ratio", "entropy_collapse": "entropy", "kl_blowup": "kl", "nonfinite": "loss",
}
"""The metric each check reads (format_stuck: every format reward's mean)."""


def _watches(check: str, key: str) -> bool:
    if check == "format_stuck":
        return key.startswith("rewards/") and "format" in key and key.endswith("/mean")
    return key == CHECK_METRICS[check]


def health_report(run_dir: str | Path) -> pd.DataFrame:
    """One row per check: whether it fired, at which step, the value, and what it means / what to try.

    The table a notebook shows as the run's health panel (and `grpo-lab report` summarises).
    """
    from grpo_lab.tracking import read_jsonl

    fired = {a["check"]: a for a in run_alerts(run_dir)}
    logged = {k for r in read_jsonl(Path(run_dir) / "metrics.jsonl") for k in r}
    rows = []
    for name, c in CHECKS.items():
        a = fired.get(name)
        status = f"FIRED at step {a['step']}" if a else "ok"
        if not a and not any(_watches(name, key) for key in logged):
            status = "not checked (its metric was not logged)"
        rows.append({"check": name, "status": status,
                     "condition": a["condition"] if a else "", "what it means": c.meaning if a else "",
                     "what to try": c.advice if a else ""})
    return pd.DataFrame(rows).set_index("check")
