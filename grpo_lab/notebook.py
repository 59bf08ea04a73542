"""What every notebook needs, in one import: quiet set-up, the shared demo run, train-or-load-or-resume.

    from grpo_lab.notebook import setup_notebook, demo_config, run_or_load
    nb = setup_notebook()          # SMOKE, RUNS and SHIPPED for this session; progress bars off
    cfg = demo_config(nb)          # the demo recipe (`make demo`), seed 0, in nb.runs
    df = run_or_load(cfg, live=True)

Why a module and not a cell repeated in every notebook: the set-up is the same everywhere, a cell
copied ten times drifts, and code here is linted and tested.

`run_or_load` is how a notebook trains without ever losing a run: a finished run is loaded (never
retrained or overwritten), an interrupted one is resumed from its newest checkpoint with the same
exactness as `grpo-lab train --resume` (it calls the same `GRPOTrainer.train(resume=True)`), and
only `restart=True` starts over, after moving the earlier run aside to RUN/previous/<timestamp>/.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml

from grpo_lab.checkpoint import find_valid_checkpoint
from grpo_lab.config import Config, load_config, packaged_config
from grpo_lab.estimate import estimate_run
from grpo_lab.tracking import load_run, read_summary

SHIPPED_DEMO = Path("shipped") / "micro_r1_zero-seed0"
"""The demo run (seed 0) as committed in notebooks/shipped/ (metrics, summary, config), relative to
notebooks/, where a notebook runs: a notebook draws it before it trains its own copy."""


@dataclass(frozen=True)
class NotebookSettings:
    """What a notebook reads from its environment.

    smoke: GRPO_LAB_SMOKE=1 (CI): few steps and samples, the same code path.
    runs: where this notebook's runs go: GRPO_LAB_RUNS, else runs/ beside the notebook
        (runs-smoke/ in smoke mode, so the two never mix).
    shipped: the committed copy of the demo run, shown before anything is trained.
    """

    smoke: bool
    runs: Path
    shipped: Path


def _short_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as 'Category: message', without the absolute path of the file that raised it."""
    return f"{category.__name__}: {message}\n"


def setup_notebook() -> NotebookSettings:
    """Quiet, reproducible notebook set-up; returns SMOKE, RUNS and SHIPPED for this session.

    Silences what a learner cannot act on: library progress bars on stderr (the training cell
    shows its own progress), and warning locations (they print absolute paths of installed
    files); the warning text itself is kept. Selects matplotlib's inline backend in a kernel.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("WANDB_SILENT", "true")
    warnings.formatwarning = _short_warning
    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notice without ipywidgets
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing")  # a transformers deprecation notice
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the "Loading weights" bar
        hf_logging.set_verbosity_error()
    except ImportError:  # transformers is a dependency; this only guards odd environments
        pass
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and "IPKernelApp" in shell.config:
            shell.run_line_magic("matplotlib", "inline")
    except ImportError:
        pass
    smoke = os.environ.get("GRPO_LAB_SMOKE") == "1"
    runs = Path(os.environ.get("GRPO_LAB_RUNS") or ("runs-smoke" if smoke else "runs"))
    return NotebookSettings(smoke=smoke, runs=runs, shipped=SHIPPED_DEMO)


def demo_config(settings: NotebookSettings, seed: int = 0, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The demo recipe (grpo_lab/configs/micro_r1_zero.yaml, as `make demo` runs it) in settings.runs.

    Notebooks 00, 04, 05 and 06 share this run: whichever runs first trains it, the others load
    it. Smoke mode shortens it (6 steps, exams at 0, 3 and 6 with 4 samples per question).
    """
    shorten = ["grpo.steps=6", "eval.every=3", "eval.k=4", "tracking.log_completions_every=2"] if settings.smoke else []
    run_dir = settings.runs / f"micro_r1_zero-seed{seed}"
    return load_config(packaged_config("micro_r1_zero"), [
        f"grpo.seed={seed}", f"tracking.run_dir={run_dir}", "tracking.progress=false", *shorten, *overrides])


def run_status(config: Config, run_dir: str | Path | None = None) -> str:
    """'finished', 'interrupted (checkpoint at step N)' (an intact checkpoint, no final summary), or 'new'."""
    run_dir = Path(run_dir or config.run_dir)
    summary = run_dir / "summary.json"
    if summary.exists() and read_summary(summary).get("final"):
        return "finished"
    checkpoint = find_valid_checkpoint(run_dir, warn=False)
    if checkpoint is not None:
        digits = re.findall(r"\d+", checkpoint.name)
        return f"interrupted (checkpoint at step {int(digits[-1])})" if digits else "interrupted"
    return "new"


PROBE_MIN_STEPS = 20
"""run_or_load probes (estimate=None) only runs longer than this: a two-step probe is then ≤ 10% of the steps."""


def run_or_load(config: Config, *, restart: bool = False, live: bool = False, keep_figure: bool = True,
                estimate: bool | None = None, reference_run: str | Path | None = None, **trainer_kwargs):
    """Load the config's run if it is finished, resume it if it was interrupted, else train it.

    Returns the run's DataFrame (grpo_lab.load_run). Notebooks use this so that one run serves
    the notebooks that analyse it and re-executing a notebook never retrains or loses a run:

    - finished, same recipe (every config value except `tracking`): loaded, not retrained;
    - finished, another recipe: FileExistsError naming the differing keys (nothing is touched);
    - interrupted (a checkpoint but no final summary): resumed from the newest intact checkpoint,
      exactly as `grpo-lab train --resume RUN_DIR` would (same `GRPOTrainer.train(resume=True)`);
    - `restart=True`: a fresh run from step 0; the earlier one is moved to RUN/previous/<time>/.

    `live=True` adds a `grpo_lab.plots.LivePlot` (curves and a progress line while it trains);
    `keep_figure=False` clears its curves when the run ends and keeps the progress line.

    `estimate`: before a run is trained from step 0, a two-step probe of the same recipe on this
    machine prints how long the run will take here ("≈ N min on this machine",
    `grpo_lab.estimate.estimate_run`), so a long cell says up front what it costs. The default
    (None) probes runs of more than PROBE_MIN_STEPS steps, where the probe costs at most a tenth
    of the run; a shorter run (smoke mode) would spend as long probing as training. True or False
    decides for any run.
    `reference_run`, a finished run of the same recipe, scales that projection by its logged
    growth in step time. A resumed run prints the step it continues from instead; its progress
    line gives the time left from the second step on. Loading a finished run probes nothing.
    """
    from grpo_lab.trainer import GRPOTrainer  # here, so that setup_notebook's filters are in place first

    run_dir = Path(trainer_kwargs.get("run_dir") or config.run_dir)
    status = run_status(config, run_dir)
    if status == "finished" and not restart:
        _check_same_recipe(config, run_dir)
        return load_run(run_dir)
    callbacks = list(trainer_kwargs.pop("callbacks", ()))
    if live:
        from grpo_lab.plots import LivePlot

        callbacks.append(LivePlot(every=max(1, config.grpo.steps // 50), total=config.grpo.steps,
                                  keep_figure=keep_figure))
    resume = status.startswith("interrupted") and not restart
    if resume:
        print(f"{run_dir}: {status}; resuming from that checkpoint (restart=True starts over)")
    elif estimate or (estimate is None and config.grpo.steps > PROBE_MIN_STEPS):
        print(f"{run_dir}: training {config.grpo.steps} steps; a two-step probe first says how long:")
        print(estimate_run(config, reference_run=reference_run), flush=True)
    try:
        return GRPOTrainer(config, callbacks=callbacks, **trainer_kwargs).train(resume=resume)
    except KeyboardInterrupt as exc:
        if hasattr(exc, "add_note"):
            exc.add_note(f"grpo-lab: interrupted; run this cell again to resume {run_dir} from its newest checkpoint")
        raise


def _check_same_recipe(config: Config, run_dir: Path) -> None:
    """Raise if the finished run in run_dir was trained with another recipe than `config`."""
    saved_dict = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    # Through Config so that keys added since the run was made read as their defaults.
    saved = _recipe(Config.from_dict(saved_dict, source=str(run_dir / "config.yaml")).to_dict())
    wanted = _recipe(config.to_dict())
    if saved != wanted:
        changed = sorted(
            f"{group}.{key}: {saved.get(group, {}).get(key)!r} (run) vs {value!r} (now)"
            for group, values in wanted.items() if isinstance(values, dict)
            for key, value in values.items() if saved.get(group, {}).get(key) != value
        ) or ["(top-level values differ)"]
        raise FileExistsError(
            f"{run_dir} holds a finished run with a different config: " + "; ".join(changed)
            + ". Delete that directory to retrain, or set tracking.run_dir to another one."
        )


def _recipe(config: dict) -> dict:
    """The parts of a config dict that change what a run learns (everything but `tracking`).

    Through JSON so that a tuple and a list with the same items compare equal (YAML gives lists).
    """
    return {k: v for k, v in json.loads(json.dumps(config)).items() if k != "tracking"}
