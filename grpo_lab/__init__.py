"""grpo-lab: a small, readable workbench for reproducing DeepSeek-R1-Zero with LoRA-based GRPO.

One module per concept:
    config      typed dataclasses, YAML, --set overrides
    rewards     rule-based rewards with TRL's signature (accuracy, format, language consistency)
    grpo        the GRPO objective: advantages, clipped ratio, k3 KL, four loss aggregations
    rollout     batched sampling with a KV cache
    trainer     the GRPO loop with LoRA (reference = adapters disabled), checkpoints, callbacks
    evaluate    pass@1 over k samples, cons@k, unbiased pass@k
    phenomena   response length, reflection ("aha") counting
    tracking    wandb (offline by default) + a local run log that loads into pandas
    health      run-health checks;  bands: reference bands;  compare: runs side by side
    plots       R1-Zero-style figures;  report: PNGs + markdown for a run
    micro_world the embedded tiny base model and its tasks
"""

from grpo_lab.compare import compare_runs
from grpo_lab.config import Config, ConfigError, load_config
from grpo_lab.tracking import load_completions, load_run, load_runs, watched_answers

__version__ = "0.1.0"

__all__ = ["Config", "ConfigError", "load_config", "load_run", "load_runs", "load_completions", "compare_runs",
           "watched_answers", "__version__"]
