"""grpo-lab: a small, readable workbench for reproducing DeepSeek-R1-Zero with LoRA-based GRPO.

One module per concept (layers from the top; tests/test_layering.py keeps them acyclic):
    cli           the command line (train, eval, demo, report, export-trl, fetch-model, ...)
    notebook      notebook set-up and run_or_load (load a finished run, resume an interrupted one)
    estimate      a short probe's projection of a run's time and memory
    report, plots figures and a markdown report; a live view for notebooks
    trainer       the GRPO loop: training_step is DeepSeekMath's Algorithm 1, top to bottom
    exam          the exam, shared by the trainer and `grpo-lab eval` (same seeds)
    logprobs      the update's forward (HF + PEFT, the reference); lean_forward: the same in plain torch
    metrics       one step's metrics under TRL's names
    run_state     everything the next step depends on besides the weights; checkpoint: saving it
    samplers/     hf (the reference), lean, vllm; rollout.generate is their functional face
    grpo          the GRPO objective: advantages, clipped ratio, k3 KL, four loss aggregations
    evaluate      pass@1 over k samples, cons@k, unbiased pass@k
    phenomena     response length, reflection ("aha") counting
    rewards       rule-based rewards with TRL's signature (accuracy, format, language, coin flip)
    data          templates and training prompts; datasets: named benchmarks; datafiles: jsonl/parquet
    answers       where a completion's final answer is
    tracking      wandb (offline by default) + a local run log that loads into pandas
    health        run-health checks; bands: reference bands; compare: runs side by side
    config        typed dataclasses, YAML, --set overrides
    plain         JSON-safe values and RNG states
    micro_world   the embedded tiny base model and its tasks
"""

from grpo_lab.compare import compare_runs
from grpo_lab.config import Config, ConfigError, load_config
from grpo_lab.tracking import load_completions, load_run, load_runs, watched_answers

__version__ = "0.1.0"

__all__ = ["Config", "ConfigError", "load_config", "load_run", "load_runs", "load_completions", "run_or_load",
           "compare_runs", "watched_answers",
           "__version__"]


def __getattr__(name: str):
    """`grpo_lab.run_or_load`, imported on first use: it needs torch, and `import grpo_lab` stays light."""
    if name == "run_or_load":
        from grpo_lab.notebook import run_or_load

        return run_or_load
    raise AttributeError(f"module 'grpo_lab' has no attribute {name!r}")
