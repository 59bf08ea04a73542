"""Experiment tracking: wandb, plus a local run directory that always loads into pandas.

Every run writes a plain directory that needs nothing but Python to read back::

    run_dir/
      config.yaml        the run's config (written atomically)
      metrics.jsonl      one JSON object per `RunLogger.log` call, each with a "step" key
      completions.jsonl  sample completions, one JSON object per row, each with a "step" key
      watched.jsonl      every exam's completions of the watched questions (eval.watch), with "step"
      events.jsonl       run-health alerts (grpo_lab.health), one line each, with "step" and "kind"
      summary.json       final numbers (`RunLogger.summary`), written atomically
      previous/<time>/   earlier runs set aside by a fresh run in the same directory (grpo_lab.rundir)
      .lock              held by the training process (grpo_lab.rundir)
      wandb/             wandb's offline run files, when wandb is offline and WANDB_DIR is unset

wandb is a convenience on top, never a requirement: if it cannot start (no key, no network, a
broken install) we warn once and keep logging locally, so a notebook never stalls on tracking.

Why JSON lines with an fsync per line: a training run can be killed at any moment (a preempted
GPU, a notebook kernel restart). Appending one line at a time and forcing it to disk means a crash
loses at most the line being written, and `read_jsonl` skips such a torn last line with a warning.

Typical use::

    with RunLogger("runs/demo", cfg.to_dict()) as logger:
        for step in range(1, num_steps + 1):
            logger.log({"reward": 0.5, "completions/mean_length": 120.0}, step=step)
        logger.summary({"final": {"eval/pass@1": 0.4}})
    df = load_run("runs/demo")          # one row per step, df.attrs["config"] holds the config
"""

from __future__ import annotations

import glob
import json
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from grpo_lab.plain import to_plain

# --------------------------------------------------------------------------------------------
# Metric names. Training names follow TRL's GRPOTrainer (docs/reference.md §5.1) so dashboards carry over;
# the phenomenon names (docs/reference.md §4, §5.2) and the eval names are grpo-lab's own.

TRAIN_METRIC_NAMES: tuple[str, ...] = (
    "reward",                            # mean total reward over the generation batch
    "reward_std",                        # std of the total reward over the whole batch (TRL 1.16)
    "frac_reward_zero_std",              # fraction of groups whose rewards are all equal (no gradient)
    "completions/mean_length",           # tokens per completion
    "completions/min_length",
    "completions/max_length",
    "completions/clipped_ratio",         # fraction truncated at max_completion_length
    "completions/mean_terminated_length",  # mean length of the completions that ended with EOS
    "completions/mean_length_correct",   # docs/reference.md §4.1: length split by correctness
    "completions/mean_length_incorrect",
    "phenomena/reflection_rate",         # fraction of completions with >= 1 reflection keyword
    "kl",                                # mean per-token k3 KL to the reference policy
    "entropy",                           # mean per-token entropy of the policy
    "clip_ratio/low_mean",               # fraction of tokens clipped at 1 - eps (negative advantage)
    "clip_ratio/high_mean",              # fraction clipped at 1 + eps (positive advantage)
    "clip_ratio/region_mean",
    "loss",                              # ~0 with num_iterations=1 although the gradient is not (TRL #3452)
    "grad_norm",
    "learning_rate",
    "num_tokens",                        # tokens seen so far (prompt + completion)
    "step_time",                         # seconds per optimisation step
)
"""Training metrics logged once per RL step. Per reward function there are also
`rewards/<fn>/mean` and `rewards/<fn>/std` (see `REWARD_METRIC_TEMPLATES`)."""

REWARD_METRIC_TEMPLATES: tuple[str, ...] = ("rewards/{fn}/mean", "rewards/{fn}/std")
"""Per-reward-function names, e.g. `rewards/accuracy_reward/mean` (TRL's convention)."""

EVAL_METRIC_NAMES: tuple[str, ...] = (
    "eval/pass@1",                 # mean correctness over k=16 samples per question (avg@16)
    "eval/cons@16",                # correctness of the majority-voted answer over 16 samples
    "eval/cons_tie_rate",          # fraction of questions whose vote was a tie (broken by a fixed rule)
    "eval/pass@16",                # unbiased pass@k: 1 - C(n-c, k) / C(n, k)
    "eval/mean_length",            # tokens per sampled answer
    "eval/mean_length_correct",
    "eval/mean_length_incorrect",
    "eval/reflection_rate",        # fraction of sampled answers with >= 1 reflection keyword
    "eval/format_rate",            # fraction in the strict R1-Zero format (a prefilled <think> included)
)
"""Held-out exam metrics (docs/reference.md §3, §5.3), logged at the steps where evaluation runs."""

DEFAULT_WANDB_INIT_TIMEOUT = 30.0
"""Seconds wandb.init may take before we give up on wandb. wandb's own default is 90 s, which
is how long an online run with a key but no network would otherwise hang (docs/reference.md §6)."""

WANDB_INIT_GRACE_S = 1.0
"""Extra seconds our own watchdog waits on top of the timeout handed to wandb, so that wandb's
own (cleaner) timeout error normally comes first; the watchdog catches an init that ignores it."""

DEFAULT_WANDB_CALL_TIMEOUT = 30.0
"""Seconds any later call into wandb (run.log, summary.update, run.finish) may take."""

WANDB_MODES = ("online", "offline", "disabled")


# --------------------------------------------------------------------------------------------
# Small file helpers


def _atomic_write_text(path: Path, text: str) -> None:
    """Write a file so readers see either the old or the new content, never half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _append_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append records, one line each, and force them to disk before returning."""
    with open(path, "a", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file written by `RunLogger`.

    A torn last line (the process died while writing it: cut anywhere, even inside a UTF-8
    character, or NUL-filled by the file system) is skipped with a warning naming the file and
    line. An unparseable or non-UTF-8 line anywhere else means real corruption, not a crash, so it
    raises `ValueError` naming the file and line number. Blank lines are ignored.
    """
    path = Path(path)
    lines = path.read_bytes().split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    records = []
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
            record = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            shown = raw[:80].decode("utf-8", "replace")
            if i == last:
                warnings.warn(
                    f"{path}: skipping torn last line {i + 1} (the run was probably interrupted "
                    f"while writing it): {shown!r}",
                    stacklevel=2,
                )
                continue
            why = "not UTF-8 text" if isinstance(e, UnicodeDecodeError) else f"not valid JSON ({e.msg})"
            raise ValueError(f"{path}: line {i + 1} is {why}: {shown!r}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}: line {i + 1} is not a JSON object: {line[:80]!r}")
        records.append(record)
    return records


def read_summary(path: str | Path) -> dict[str, Any]:
    """summary.json as a dict; a damaged one raises `ValueError` naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a valid summary file ({type(exc).__name__}: {exc}); delete or fix it") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a valid summary file (a JSON object is expected, got {type(data).__name__})")
    return data


def _write_jsonl_atomic(path: Path, records: list[dict[str, Any]]) -> None:
    _atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


# --------------------------------------------------------------------------------------------
# RunLogger


class RunLogger:
    """Log a run to a local directory and (optionally) to wandb. Use as a context manager.

    Args:
        run_dir: the run directory; created if missing.
        config: the run's config, saved as `config.yaml` and as the wandb config. Dataclasses,
            Paths, tuples and numpy scalars are converted to plain YAML values.
        wandb_mode: "online", "offline" (default: no account needed, `wandb sync` later) or
            "disabled" (wandb writes nothing at all). The `WANDB_MODE` environment variable,
            when set, wins over this argument, so CI or a shell can switch wandb off without
            editing a notebook.
        project: wandb project name.
        run_name: wandb run name; defaults to the run directory's name.
        resume: keep the existing `metrics.jsonl` / `completions.jsonl` and append to them.
            Call `truncate_after(checkpoint_step)` next so that the steps logged after the
            checkpoint (and about to be redone) are not duplicated. Without `resume`, an earlier
            run's files in `run_dir` are moved to `run_dir/previous/<UTC time>/` (with a warning,
            grpo_lab.rundir) so a re-run cell starts clean and nothing is lost.
        wandb_init_timeout: seconds before giving up on `wandb.init` (wandb's default is 90).
        wandb_call_timeout: seconds any later call into wandb (log, summary, finish) may take;
            on a time-out wandb is switched off with one warning and logging goes on locally.

    wandb files go to `$WANDB_DIR/wandb/` when WANDB_DIR is set, else to `run_dir/wandb/`.
    Set `WANDB_SILENT=true` to keep wandb's run ids and paths off stderr (needed for nbval).
    """

    def __init__(
        self,
        run_dir: str | Path,
        config: dict[str, Any],
        *,
        wandb_mode: str = "offline",
        project: str = "grpo-lab",
        run_name: str | None = None,
        resume: bool = False,
        wandb_init_timeout: float = DEFAULT_WANDB_INIT_TIMEOUT,
        wandb_call_timeout: float = DEFAULT_WANDB_CALL_TIMEOUT,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config = to_plain(config) if config is not None else {}
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.completions_path = self.run_dir / "completions.jsonl"
        self.summary_path = self.run_dir / "summary.json"
        self.watched_path = self.run_dir / "watched.jsonl"
        self.events_path = self.run_dir / "events.jsonl"
        self._wandb_run: Any = None  # a wandb Run while wandb is active, else None
        self.wandb_call_timeout = wandb_call_timeout
        self._warned = False
        self._closed = False

        if not resume:
            # A fresh run never overwrites an earlier one: its files move to run_dir/previous/<time>/.
            from grpo_lab.rundir import set_aside_previous_run

            set_aside_previous_run(self.run_dir)
        _atomic_write_text(self.run_dir / "config.yaml", yaml.safe_dump(self.config, sort_keys=False))
        for path in self._step_files:
            if not path.exists():
                if path in (self.metrics_path, self.completions_path):  # the others appear when first written
                    path.touch()
            elif resume:
                # Rewriting drops a torn last line from a crash; otherwise the next append would
                # turn it into a corrupt middle line that read_jsonl refuses.
                _write_jsonl_atomic(path, read_jsonl(path))
            elif path.stat().st_size > 0:
                _atomic_write_text(path, "")

        mode = os.environ.get("WANDB_MODE") or wandb_mode
        if mode not in WANDB_MODES:
            raise ValueError(f"wandb mode must be one of {WANDB_MODES}, got {mode!r}")
        self.wandb_mode = mode
        if mode != "disabled":  # disabled: never even import wandb, so nothing touches the disk
            self._init_wandb(mode, project, run_name or self.run_dir.name, resume, wandb_init_timeout)

    @property
    def _step_files(self) -> tuple[Path, ...]:
        """The JSON-lines files whose lines carry a "step" (truncated together on resume)."""
        return (self.metrics_path, self.completions_path, self.watched_path, self.events_path)

    @property
    def wandb_dir(self) -> Path:
        """Where wandb writes this run's files: $WANDB_DIR/wandb when WANDB_DIR is set, else RUN_DIR/wandb."""
        return Path(os.environ.get("WANDB_DIR") or str(self.run_dir)) / "wandb"

    def _init_wandb(self, mode: str, project: str, name: str, resume: bool, timeout: float) -> None:
        """Start wandb; on any failure warn once and carry on with local logging only.

        A resumed run continues the same wandb run id (resume="allow"). Offline, the interrupted
        attempt's offline run directory may miss lines (those logged after its last checkpoint were
        redone, an exam or a table may never have been written), so it is renamed
        `superseded-offline-run-…` (kept, but out of `wandb sync`'s way) and `replay_to_wandb`
        writes the run's whole local log into the new offline run: it then holds every step once.
        """
        id_path = self.run_dir / "wandb_run_id"
        self._wandb_needs_replay = False
        try:
            import wandb

            self.wandb_dir.parent.mkdir(parents=True, exist_ok=True)  # a missing WANDB_DIR: wandb writes nothing

            kwargs: dict[str, Any] = {}
            if resume and id_path.exists():  # continue the same wandb run (online dashboards)
                run_id = id_path.read_text().strip()
                kwargs = {"id": run_id, "resume": "allow"}
                if mode == "offline":
                    for old in sorted(self.wandb_dir.glob(f"offline-run-*-{run_id}")):
                        os.replace(old, old.with_name("superseded-" + old.name))
                    self._wandb_needs_replay = True
            self._wandb_run = _call_with_timeout(
                lambda: wandb.init(
                    project=project,
                    name=name,
                    config=self.config,
                    mode=mode,
                    # Passed explicitly: wandb reads WANDB_DIR only once per process.
                    dir=os.environ.get("WANDB_DIR") or str(self.run_dir),
                    settings=wandb.Settings(init_timeout=timeout, silent=True),
                    **kwargs,
                ),
                timeout + WANDB_INIT_GRACE_S,
                what="wandb.init",
            )
            _atomic_write_text(id_path, self._wandb_run.id)
        except Exception as e:  # noqa: BLE001 -- tracking must never stop training
            self._wandb_run = None
            self._warn_wandb(f"wandb.init failed ({type(e).__name__}: {e})")

    def replay_to_wandb(self) -> None:
        """Write the run's local log (every step of metrics.jsonl, its tables and alerts) into wandb.

        Runs by itself before the first line a resumed logger writes (by then the trainer has cut the
        local files back to the checkpoint with `truncate_after` / `drop_metrics`): a resumed offline
        run then holds each step exactly once, in order, before the redone steps are logged. Does
        nothing unless a resumed offline run needs it.
        """
        if not getattr(self, "_wandb_needs_replay", False) or self._wandb_run is None:
            return
        self._wandb_needs_replay = False
        by_step: dict[int, dict[str, Any]] = {}
        for record in read_jsonl(self.metrics_path):
            by_step.setdefault(int(record["step"]), {}).update({k: v for k, v in record.items() if k != "step"})
        tables: dict[tuple[int, str], list[dict[str, Any]]] = {}
        for key, path in (("completions", self.completions_path), ("watched", self.watched_path)):
            for record in read_jsonl(path) if path.exists() else []:
                tables.setdefault((int(record["step"]), key), []).append(record)
        for (step, key), records in tables.items():
            by_step.setdefault(step, {})[key] = records
        for event in read_jsonl(self.events_path) if self.events_path.exists() else []:
            if event.get("kind") == "health":
                by_step.setdefault(int(event["step"]), {})[f"health/{event['check']}"] = 1.0
        run = self._wandb_run
        for step in sorted(by_step):
            data = by_step[step]

            def log_step(step: int = step, data: dict[str, Any] = data) -> None:
                out = {k: (_wandb_table(v) if k in ("completions", "watched") else v) for k, v in data.items()}
                run.log(out, step=step)

            self._wandb_call(log_step, what="wandb run.log (replay)")
        if self.summary_path.exists() and self._wandb_run is not None:
            summary = read_summary(self.summary_path)
            self._wandb_call(lambda: run.summary.update(summary), what="wandb summary.update (replay)")

    def _warn_wandb(self, reason: str) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(f"{reason}; logging to {self.run_dir} only", stacklevel=3)

    def _wandb_call(self, fn: Callable[[], Any], what: str) -> None:
        """Call into wandb, bounded: a failure or a call that does not return within
        `wandb_call_timeout` switches wandb off (one warning) instead of raising or blocking."""
        if self._wandb_run is None:
            return
        try:
            _call_with_timeout(fn, self.wandb_call_timeout, what=what)
        except Exception as e:  # noqa: BLE001
            self._warn_wandb(f"wandb call failed ({type(e).__name__}: {e})")
            self._wandb_run = None

    @property
    def wandb_active(self) -> bool:
        """True while wandb is receiving the logs."""
        return self._wandb_run is not None

    # -- logging -------------------------------------------------------------------------------

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Record metrics for one step: a line in metrics.jsonl (synced to disk) and wandb.

        Several calls with the same step (training metrics, then eval metrics) are merged into
        one row by `load_run`. wandb drops steps lower than one it has already seen.
        """
        self.replay_to_wandb()
        record = {"step": int(step), **to_plain({k: v for k, v in metrics.items() if k != "step"})}
        _append_jsonl(self.metrics_path, [record])
        if self._wandb_run is not None:
            run, data = self._wandb_run, {k: v for k, v in record.items() if k != "step"}
            self._wandb_call(lambda: run.log(data, step=int(step)), what="wandb run.log")

    def log_completions(self, step: int, rows: list[dict[str, Any]]) -> None:
        """Record sample completions, e.g. rows of {prompt, completion, reward, length, ...}.

        Each row gets a "step" key in completions.jsonl; wandb gets a Table under "completions".
        """
        self._log_rows(self.completions_path, "completions", step, rows)

    def _log_rows(self, path: Path, key: str, step: int, rows: list[dict[str, Any]]) -> None:
        self.replay_to_wandb()
        records = [{"step": int(step), **to_plain(row)} for row in rows]
        _append_jsonl(path, records)
        if self._wandb_run is not None and records:
            run = self._wandb_run
            self._wandb_call(lambda: run.log({key: _wandb_table(records)}, step=int(step)), what="wandb run.log")

    def log_watched(self, step: int, result: Any, questions: Iterable[int]) -> None:
        """Record one exam's completions of the watched questions (eval.watch) in watched.jsonl and wandb.

        `result` is the exam's `grpo_lab.evaluate.ExamResult`; indices beyond the exam are ignored.
        Each row: question_idx, question, answer (gold), sample_idx, completion, extracted, correct,
        length, n_reflections. wandb gets a Table under "watched" at the exam's step.
        """
        wanted = [int(i) for i in questions]
        if not wanted:
            return
        samples, per_question = result.samples, result.per_question
        rows = []
        for _, sample in samples[samples["question_idx"].isin(wanted)].iterrows():
            q = int(sample["question_idx"])
            rows.append({"question_idx": q, "question": per_question.iloc[q]["question"],
                         "answer": per_question.iloc[q]["answer"],
                         **{k: (None if _is_missing(sample[k]) else sample[k])
                            for k in ("sample_idx", "completion", "extracted", "correct", "length", "n_reflections")
                            if k in sample}})
        self._log_rows(self.watched_path, "watched", step, rows)

    def log_health(self, alert: Any) -> None:
        """Record a run-health alert (grpo_lab.health.HealthAlert): events.jsonl and wandb.

        wandb: `health/<check>` = 1 at the alert's step and the message in the summary; online also
        a wandb alert (an e-mail or Slack message, as the account is set up).
        """
        self.replay_to_wandb()
        event = {"step": int(alert.step), "kind": "health", **to_plain(alert.to_dict())}
        _append_jsonl(self.events_path, [event])
        if self._wandb_run is None:
            return
        run, key = self._wandb_run, f"health/{alert.check}"
        self._wandb_call(lambda: run.log({key: 1.0}, step=int(alert.step)), what="wandb run.log")
        self._wandb_call(lambda: run.summary.update({key: event["message"]}), what="wandb summary.update")
        if self.wandb_mode == "online":
            def send_alert() -> None:
                import wandb

                run.alert(title=f"grpo-lab: {alert.title}", text=event["message"], level=wandb.AlertLevel.WARN)

            self._wandb_call(send_alert, what="wandb run.alert")

    def summary(self, d: dict[str, Any]) -> None:
        """Record final numbers: merged into summary.json (atomically) and the wandb summary.

        grpo-lab's convention (read by `report.write_report`): `{"step0": {eval metrics before
        training}, "final": {eval metrics after training}, ...}`.
        """
        self.replay_to_wandb()
        current: dict[str, Any] = read_summary(self.summary_path) if self.summary_path.exists() else {}
        current.update(to_plain(d))
        _atomic_write_text(self.summary_path, json.dumps(current, indent=2, ensure_ascii=False) + "\n")
        if self._wandb_run is not None:
            run, plain = self._wandb_run, to_plain(d)
            self._wandb_call(lambda: run.summary.update(plain), what="wandb summary.update")

    def truncate_after(self, step: int) -> None:
        """Drop logged lines with step > `step` (metrics and completions), atomically.

        Why: a run resumed from the checkpoint of step N redoes steps N+1, N+2, ...; their lines
        from the interrupted attempt must go so the resumed run neither loses nor duplicates rows.
        """
        for path in self._step_files:
            if path.exists():
                _write_jsonl_atomic(path, [r for r in read_jsonl(path) if r.get("step", -math.inf) <= step])

    def drop_metrics(self, where: Callable[[dict[str, Any]], bool]) -> None:
        """Drop the metrics lines for which `where(record)` is true, atomically.

        The trainer uses it on resume to drop the eval lines of the checkpoint's own step that
        were logged after the checkpoint was written (the eval is then redone, not duplicated).
        """
        if self.metrics_path.exists():
            records = read_jsonl(self.metrics_path)
            kept = [r for r in records if not where(r)]
            if len(kept) != len(records):
                _write_jsonl_atomic(self.metrics_path, kept)

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Finish the wandb run (local files are already on disk). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.replay_to_wandb()
        if self._wandb_run is not None:
            self._wandb_call(self._wandb_run.finish, what="wandb run.finish")
            self._wandb_run = None

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _call_with_timeout(fn: Callable[[], Any], timeout: float, what: str) -> Any:
    """Run `fn()` in a daemon thread and wait at most `timeout` seconds for it.

    Why: `wandb.init` is meant to honour its own init_timeout, but a hung network call, a stuck
    service process or a misbehaving install must not be able to stall a training run or a
    notebook. On a timeout we raise `TimeoutError` and abandon the thread; should `fn` still
    return a run later, that run is finished quietly in the thread so nothing keeps logging.
    """
    lock = threading.Lock()
    result: dict[str, Any] = {}
    abandoned = threading.Event()

    def target() -> None:
        try:
            value = fn()
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller
            with lock:
                result["error"] = exc
            return
        with lock:
            result["value"] = value
            late = abandoned.is_set()
        if late and hasattr(value, "finish"):
            try:
                value.finish()
            except Exception:  # noqa: BLE001
                pass

    thread = threading.Thread(target=target, name=f"grpo-lab-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    with lock:
        if "value" not in result and "error" not in result:
            abandoned.set()
            raise TimeoutError(f"{what} did not return within {timeout:.1f} s")
    if "error" in result:
        raise result["error"]
    return result["value"]


def _is_missing(value: Any) -> bool:
    """NaN / None (pandas writes a missing extracted answer as NaN; JSON gets null instead)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _wandb_table(records: list[dict[str, Any]]) -> Any:
    """A wandb.Table of JSON-lines records (the columns are the union of their keys)."""
    import wandb

    columns = list(dict.fromkeys(k for r in records for k in r))
    return wandb.Table(columns=columns, data=[[_table_cell(r.get(c)) for c in columns] for r in records])


def _table_cell(value: Any) -> Any:
    """wandb.Table columns must hold one type; nested values become JSON strings."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


# --------------------------------------------------------------------------------------------
# Loading runs into pandas


def _run_dir_of(path: str | Path, filename: str) -> tuple[Path, Path]:
    """Accept a run directory or a file inside it; return (run_dir, run_dir/filename)."""
    path = Path(path)
    if path.is_file() or path.suffix == ".jsonl":
        return path.parent, path
    return path, path / filename


def load_run(path: str | Path) -> pd.DataFrame:
    """Load a run directory (or its metrics.jsonl) into a DataFrame, one row per step.

    Lines logged with the same step are merged into one row (later keys win), so training and
    eval metrics of a step sit side by side; keys not logged at a step are NaN. Rows are sorted
    by step. `df.attrs` holds "config" (from config.yaml, {} if missing), "summary" (from
    summary.json, {} if missing), "run_dir" and "name" (the directory's name).
    """
    run_dir, metrics_path = _run_dir_of(path, "metrics.jsonl")
    if not metrics_path.exists():
        raise FileNotFoundError(f"no metrics.jsonl at {metrics_path}: is {run_dir} a grpo-lab run directory?")
    rows: dict[int, dict[str, Any]] = {}
    for record in read_jsonl(metrics_path):
        if "step" not in record:
            raise ValueError(f"{metrics_path}: a line has no 'step' key: {record}")
        rows.setdefault(int(record["step"]), {}).update(record)
    df = pd.DataFrame([rows[s] for s in sorted(rows)])
    if df.empty:
        df = pd.DataFrame({"step": pd.Series(dtype="int64")})
    df = df[["step"] + [c for c in df.columns if c != "step"]].reset_index(drop=True)

    config_path = run_dir / "config.yaml"
    summary_path = run_dir / "summary.json"
    df.attrs["config"] = (yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}) if config_path.exists() else {}
    df.attrs["summary"] = read_summary(summary_path) if summary_path.exists() else {}
    df.attrs["run_dir"] = str(run_dir)
    df.attrs["name"] = run_dir.resolve().name
    return df


def load_runs(pattern: str | Path) -> pd.DataFrame:
    """Load every run directory matching a glob pattern (e.g. "runs/seed*") into one DataFrame.

    A `run` column names each row's run (the directory name, or its path where names clash);
    directories without a metrics.jsonl are skipped. `df.attrs["configs"]` maps run -> config.
    """
    dirs = []
    for match in sorted(glob.glob(str(pattern))):
        run_dir, metrics_path = _run_dir_of(match, "metrics.jsonl")
        if metrics_path.exists() and run_dir not in dirs:
            dirs.append(run_dir)
    if not dirs:
        raise FileNotFoundError(f"no run directories (with a metrics.jsonl) match {str(pattern)!r}")
    names = [d.name for d in dirs]
    if len(set(names)) < len(names):
        names = [str(d) for d in dirs]
    frames, configs = [], {}
    for name, run_dir in zip(names, dirs):
        df = load_run(run_dir)
        configs[name] = df.attrs["config"]
        frames.append(df.assign(run=name))
    out = pd.concat(frames, ignore_index=True)
    out = out[["run"] + [c for c in out.columns if c != "run"]]
    out.attrs = {"configs": configs}
    return out


def load_completions(path: str | Path) -> pd.DataFrame:
    """Load completions.jsonl (given a run directory or the file) into a DataFrame."""
    run_dir, completions_path = _run_dir_of(path, "completions.jsonl")
    if not completions_path.exists():
        raise FileNotFoundError(f"no completions.jsonl at {completions_path}")
    df = pd.DataFrame(read_jsonl(completions_path))
    df.attrs["run_dir"] = str(run_dir)
    df.attrs["name"] = run_dir.resolve().name
    return df


# --------------------------------------------------------------------------------------------
# Watched questions


def watched_answers(run_dir: str | Path, question: int | str) -> pd.DataFrame:
    """One exam question's sampled answers at every exam of a run: how they changed over training.

    `question` is the exam question's index or its text. Reads watched.jsonl (the questions in
    eval.watch), or else the full exam samples in eval/samples_step*.jsonl (any question, also for
    runs made before watched.jsonl existed). One row per exam step: samples, pass@1 (fraction
    correct), mean_length, reflection_rate, and two booleans marking the first exam where the
    reasoning grew longer than at step 0 by half (`longer`) and where a reflection/check first
    appeared in any sample (`first_check`), plus one example completion (a correct one with a check
    if any, else a correct one, else the first). `df.attrs["samples"]` holds every sample row.
    """
    run_dir = Path(run_dir)
    frames = []
    if (run_dir / "watched.jsonl").exists():
        watched = pd.DataFrame(read_jsonl(run_dir / "watched.jsonl"))
        if not watched.empty:
            frames.append(watched)
    samples = frames[0] if frames else pd.DataFrame()
    index = _question_index(run_dir, question, samples)
    if samples.empty or index not in set(samples["question_idx"]):
        files = sorted((run_dir / "eval").glob("samples_step*.jsonl"))
        if not files:
            raise FileNotFoundError(f"{run_dir}: no watched.jsonl with question {question!r} and no eval/samples_step*.jsonl")
        parts = []
        for f in files:
            part = pd.read_json(f, orient="records", lines=True)
            part = part[part["question_idx"] == index]
            parts.append(part.assign(step=int(f.stem.removeprefix("samples_step"))))
        samples = pd.concat(parts, ignore_index=True)
    samples = samples[samples["question_idx"] == index].sort_values(["step", "sample_idx"]).reset_index(drop=True)
    if samples.empty:
        raise KeyError(f"{run_dir}: question {question!r} has no logged samples")
    rows = []
    for step, group in samples.groupby("step", sort=True):
        correct = group["correct"].astype(bool)
        reflecting = group["n_reflections"] > 0
        # the example: a correct answer with a check if there is one, else any correct one, else the first
        example = next(group[m].iloc[0] for m in (correct & reflecting, correct, correct | True) if m.any())
        rows.append({"step": int(step), "samples": len(group), "pass@1": float(correct.mean()),
                     "mean_length": float(group["length"].mean()),
                     "reflection_rate": float((group["n_reflections"] > 0).mean()),
                     "example": str(example["completion"])})
    out = pd.DataFrame(rows)
    start = out["mean_length"].iloc[0]
    longer = out["mean_length"] > 1.5 * start
    out["longer"] = longer & ~longer.cummax().shift(fill_value=False)
    checked = out["reflection_rate"] > 0
    out["first_check"] = checked & ~checked.cummax().shift(fill_value=False)
    out.attrs["samples"] = samples
    out.attrs["question_idx"] = index
    out.attrs["question"] = _question_text(run_dir, index, samples)
    return out


def _question_text(run_dir: Path, index: int, samples: pd.DataFrame) -> str | None:
    if "question" in samples and samples["question"].notna().any():
        return str(samples["question"].dropna().iloc[0])
    tables = sorted((run_dir / "eval").glob("questions_step*.csv"))
    if tables:
        table = pd.read_csv(tables[0])
        if 0 <= index < len(table):
            return str(table["question"].iloc[index])
    return None


def _question_index(run_dir: Path, question: int | str, samples: pd.DataFrame) -> int:
    """An exam question's index from its index or its text."""
    if isinstance(question, (int,)) or (isinstance(question, str) and question.isdigit()):
        return int(question)
    if not samples.empty and "question" in samples:
        hit = samples[samples["question"] == question]
        if not hit.empty:
            return int(hit["question_idx"].iloc[0])
    tables = sorted((run_dir / "eval").glob("questions_step*.csv"))
    if tables:
        table = pd.read_csv(tables[0])
        hit = table.index[table["question"] == question].tolist()
        if hit:
            return int(hit[0])
    raise KeyError(f"{run_dir}: no exam question {question!r}")


# --------------------------------------------------------------------------------------------
# wandb's offline files


def offline_wandb_runs(run_dir: str | Path, wandb_dir: str | Path | None = None) -> list[Path]:
    """The offline wandb run directories of a run (what `wandb sync` uploads), oldest first.

    They are in RUN_DIR/wandb/ (or $WANDB_DIR/wandb/ when WANDB_DIR was set while training), named
    offline-run-<time>-<run id>; the run id is in RUN_DIR/wandb_run_id. Upload with
    `wandb sync RUN_DIR/wandb/offline-run-*`. Attempts that a resume superseded are named
    superseded-offline-run-… and are not listed (the resumed run holds all their steps).
    `wandb_dir`: the WANDB_DIR the run was trained with, if it is not set now.
    """
    run_dir = Path(run_dir)
    id_path = run_dir / "wandb_run_id"
    if not id_path.exists():
        return []
    run_id = id_path.read_text().strip()
    roots = [run_dir / "wandb"] + [Path(d) / "wandb" for d in (wandb_dir, os.environ.get("WANDB_DIR")) if d]
    found = {p for root in roots for p in root.glob(f"offline-run-*-{run_id}") if p.is_dir()}
    return sorted(found, key=lambda p: p.name)


_WANDB_LOG_BLOCK = 32768  # the LevelDB log format's block size, which wandb's transaction log uses
_WANDB_LOG_HEADER = 7     # checksum (uint32), length (uint16), type (uint8) before each fragment


def read_offline_wandb(path: str | Path, wait_s: float = 0.0) -> list[Any]:
    """The records of a wandb offline run file (run-<id>.wandb), as wandb's own protobuf `Record`s.

    Why: an offline run cannot be opened with wandb's public API (that needs a server) and wandb
    ≥ 0.2x ships no Python reader for its transaction log. The file is a LevelDB-format log
    (https://github.com/google/leveldb/blob/main/doc/log_format.md): a 7-byte header (":W&B", a
    magic uint16, a version byte), then 32 KiB blocks of fragments, each with a CRC-32 of its type
    byte and data, a length and a type (full, first, middle, last). Each reassembled record is a
    `wandb.proto.wandb_internal_pb2.Record`, decoded by wandb's own protobuf classes. A torn last
    fragment (a killed writer) ends the read; a bad checksum elsewhere raises ValueError.
    `path` may be the .wandb file or its offline run directory.

    wandb's service may still be writing a run's file for a moment after `run.finish()` (or the
    process) has returned: with `wait_s` > 0 the file is re-read until it holds the run's exit
    record or `wait_s` seconds have passed.
    """
    import time

    deadline = time.monotonic() + wait_s
    while True:
        try:
            records = _read_wandb_log(path)
        except FileNotFoundError:  # the service has not created the file yet: wait for it too
            if wait_s <= 0 or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)
            continue
        if wait_s <= 0 or time.monotonic() >= deadline or any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        time.sleep(0.2)


def _read_wandb_log(path: str | Path) -> list[Any]:
    """One pass of `read_offline_wandb`."""
    import struct
    import zlib

    from wandb.proto import wandb_internal_pb2

    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("run-*.wandb"))
        if not files:
            raise FileNotFoundError(f"no run-*.wandb file in {path}")
        path = files[0]
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a wandb transaction log (header {data[:7]!r})")
    records, pending, pos = [], b"", 7
    while pos + _WANDB_LOG_HEADER <= len(data):
        left = _WANDB_LOG_BLOCK - pos % _WANDB_LOG_BLOCK
        if left < _WANDB_LOG_HEADER:  # a block's trailer: too short for a fragment header
            pos += left
            continue
        checksum, length, kind = struct.unpack("<IHB", data[pos : pos + _WANDB_LOG_HEADER])
        chunk = data[pos + _WANDB_LOG_HEADER : pos + _WANDB_LOG_HEADER + length]
        if kind == 0 and length == 0:  # zero padding at the end of a block or file
            pos += left
            continue
        if len(chunk) < length:
            break  # torn last fragment
        if zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != checksum:
            if pos + _WANDB_LOG_HEADER + length >= len(data):
                break
            raise ValueError(f"{path}: bad checksum at byte {pos}")
        pos += _WANDB_LOG_HEADER + length
        if kind == 1:
            payload = chunk
        elif kind == 2:
            pending = chunk
            continue
        elif kind == 3:
            pending += chunk
            continue
        elif kind == 4:
            payload, pending = pending + chunk, b""
        else:
            raise ValueError(f"{path}: unknown fragment type {kind} at byte {pos}")
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        records.append(record)
    return records


def offline_wandb_history(path: str | Path, wait_s: float = 0.0) -> list[dict[str, Any]]:
    """The history rows (what `run.log` wrote) of an offline wandb run, in file order.

    Each row is {"_step": step, key: value, ...} with values decoded from wandb's JSON; a logged
    Table appears as wandb's JSON description of it (a dict with "_type": "table-file"). `wait_s`:
    as in `read_offline_wandb`.
    """
    rows = []
    for record in read_offline_wandb(path, wait_s):
        if record.WhichOneof("record_type") != "history":
            continue
        row: dict[str, Any] = {}
        for item in record.history.item:
            path = [item.key] if item.key else list(item.nested_key)
            node = row
            for part in path[:-1]:  # a logged Table is stored as nested keys: table/_type, table/path, ...
                node = node.setdefault(part, {})
            node[path[-1]] = json.loads(item.value_json)
        row["_step"] = int(record.history.step.num)
        rows.append(row)
    return rows
