"""Every bad input gives a clear error that names the culprit (file and line, config key, path).

The data errors are raised before the model is loaded, so a typo in a dataset costs a second,
not the minutes a big model takes to load. Errors that happen mid-run leave the run log and the
checkpoints on disk (see also tests/test_reliability.py for reward-function failures and NaNs).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from grpo_lab import cli
from grpo_lab.config import Config, ConfigError, ModelConfig
from grpo_lab.data import PromptSource, load_dataset_file, load_exam
from grpo_lab.evaluate import pass_at_k, score_exam
from grpo_lab.models import load_model_and_tokenizer, load_tokenizer
from grpo_lab.tracking import load_run
from grpo_lab.trainer import GRPOTrainer, latest_checkpoint
from tests.conftest import tiny_config


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def message(fn) -> str:
    with pytest.raises(Exception) as info:
        fn()
    return str(info.value)


GOOD = json.dumps({"question": "1 + 1 = ?", "answer": "2"})


# ------------------------------------------------------------------------------------ datasets
def test_malformed_jsonl_names_file_and_line(tmp_path):
    path = write_lines(tmp_path / "train.jsonl", [GOOD, GOOD, '{"question": "2 + 2 = ?", "answer": '])
    msg = message(lambda: load_dataset_file(path))
    assert f"{path}:3" in msg and "not valid JSON" in msg


def test_a_line_that_is_not_an_object_names_file_and_line(tmp_path):
    path = write_lines(tmp_path / "train.jsonl", [GOOD, "[1, 2]"])
    assert f"{path}:2: each line must be a JSON object, got list" in message(lambda: load_dataset_file(path))


def test_binary_file_given_as_jsonl_is_explained(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(GOOD.encode() + b"\n\xff\xfe\x00garbage\n")
    msg = message(lambda: load_dataset_file(path))
    assert f"{path}:2" in msg and "UTF-8" in msg


@pytest.mark.parametrize("missing, setting", [("question", "data.question_field"), ("answer", "data.answer_field")])
def test_row_without_question_or_answer_names_field_line_and_setting(tmp_path, missing, setting):
    row = {"question": "3 + 4 = ?", "answer": "7", "id": 9}
    del row[missing]
    path = write_lines(tmp_path / "train.jsonl", [GOOD, json.dumps(row)])
    msg = message(lambda: load_dataset_file(path))
    assert f"{path}:2" in msg and f"no {missing!r} field" in msg and setting in msg and "'id'" in msg


def test_null_answer_is_reported_as_null(tmp_path):
    path = write_lines(tmp_path / "train.jsonl", [json.dumps({"question": "q", "answer": None})])
    assert "the 'answer' field is null (data.answer_field = 'answer')" in message(lambda: load_dataset_file(path))


def test_custom_field_names_are_honoured_and_checked(tmp_path):
    path = write_lines(tmp_path / "exam.jsonl", [json.dumps({"problem": "2 + 2 = ?", "solution": "4"})])
    rows = load_exam(str(path), "problem", "solution")
    assert rows[0]["question"] == "2 + 2 = ?" and rows[0]["answer"] == "4"
    assert "no 'problem' field" in message(lambda: load_exam(str(write_lines(tmp_path / "b.jsonl", [GOOD])),
                                                             "problem", "solution"))


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_dataset_is_an_error_naming_file_and_setting(tmp_path, content):
    path = tmp_path / "train.jsonl"
    path.write_text(content)
    msg = message(lambda: PromptSource(str(path), seed=0))
    assert str(path) in msg and "data.train is empty" in msg


def test_missing_dataset_file_names_path_and_setting(tmp_path):
    msg = message(lambda: PromptSource(str(tmp_path / "nope.jsonl"), seed=0))
    assert "data.train file not found" in msg and "nope.jsonl" in msg
    assert "eval.exam file not found" in message(lambda: load_exam(str(tmp_path / "nope.jsonl")))


def test_training_set_that_is_all_exam_questions_is_an_error(tmp_path):
    path = write_lines(tmp_path / "train.jsonl", [GOOD])
    msg = message(lambda: PromptSource(str(path), seed=0, exclude_questions={"1 + 1 = ?"}))
    assert "every training row is also an exam question" in msg and str(path) in msg


def test_parquet_datasets_load_and_are_checked(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    good = tmp_path / "train.parquet"
    pd.DataFrame({"question": ["1 + 1 = ?", "2 + 2 = ?"], "answer": ["2", "4"]}).to_parquet(good)
    assert [r["answer"] for r in load_dataset_file(good)] == ["2", "4"]
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"question": ["1 + 1 = ?", "2 + 2 = ?"], "answer": ["2", None]}).to_parquet(bad)
    assert f"{bad}: row 1: the 'answer' field is null" in message(lambda: load_dataset_file(bad))
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    assert f"{broken}: not a readable parquet file" in message(lambda: load_dataset_file(broken))


def test_trainer_reports_a_bad_dataset_before_loading_the_model(tmp_path, monkeypatch, tiny_exam):
    import grpo_lab.trainer as trainer_module

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not be loaded before the data is checked")

    monkeypatch.setattr(trainer_module, "load_model_and_tokenizer", no_model)
    bad = write_lines(tmp_path / "train.jsonl", [GOOD, "{oops"])
    cfg = tiny_config(tmp_path / "no_model", tiny_exam, tmp_path / "run")
    cfg.data.train = str(bad)
    assert f"{bad}:2" in message(lambda: GRPOTrainer(cfg))
    cfg.data.train = "micro"
    cfg.eval.exam = str(write_lines(tmp_path / "exam.jsonl", ['{"question": "q"}']))
    assert f"{cfg.eval.exam}:1: row has no 'answer' field" in message(lambda: GRPOTrainer(cfg))


# ------------------------------------------------------------------------------------ config
@pytest.mark.parametrize(
    "override, fragment",
    [
        ("grpo.group_sise=4", "unknown key 'grpo.group_sise' (did you mean grpo.group_size?)"),
        ("trainer.lr=1", "unknown key 'trainer'"),
        ("grpo.group_size=1", "grpo.group_size = 1 must be ≥ 2"),
        ("grpo.epsilon=-0.1", "grpo.epsilon = -0.1 must be ≥ 0"),
        ("grpo.epsilon_high=-1", "grpo.epsilon_high = -1.0 must be ≥ 0"),
        ("grpo.top_p=0", "grpo.top_p = 0.0 must be in (0, 1]"),
        ("grpo.top_p=1.01", "grpo.top_p = 1.01 must be in (0, 1]"),
        ("eval.top_p=-0.5", "eval.top_p = -0.5 must be in (0, 1]"),
        ("grpo.temperature=0", "grpo.temperature = 0.0 must be > 0"),
        ("grpo.lr=0", "grpo.lr = 0.0 must be > 0"),
        ("grpo.beta=-0.01", "grpo.beta = -0.01 must be ≥ 0"),
        ("grpo.max_new_tokens=0", "grpo.max_new_tokens = 0 must be ≥ 1"),
        ("grpo.max_prompt_length=0", "grpo.max_prompt_length = 0 must be ≥ 1"),
        ("grpo.max_nonfinite_steps=0", "grpo.max_nonfinite_steps = 0 must be ≥ 1"),
        ("grpo.stop_strings=['']", "grpo.stop_strings"),
        ("eval.k=0", "eval.k = 0 must be ≥ 1"),
        ("eval.max_new_tokens=0", "eval.max_new_tokens = 0 must be ≥ 1"),
        ("eval.lexicon=klingon", "eval.lexicon = 'klingon' is unknown"),
        ("model.lora_dropout=1", "model.lora_dropout = 1.0 must be in [0, 1)"),
        ("model.lora_alpha=0", "model.lora_alpha = 0 must be > 0"),
        ("rewards.target_language=fr", "rewards.target_language = 'fr' is not supported"),
        ("rewards.functions=[accuracy, magic]", "unknown reward 'magic'"),
        ("tracking.save_every=-1", "tracking.save_every = -1 must be ≥ 0"),
        ("grpo.loss_type=ppo", "grpo.loss_type = 'ppo' is not allowed"),
        ("grpo.steps=many", "grpo.steps must be an integer, got 'many'"),
    ],
)
def test_bad_config_value_names_the_key_and_what_is_allowed(override, fragment):
    with pytest.raises(ConfigError) as info:
        Config().with_overrides([override])
    assert fragment in str(info.value)


def test_cli_prints_config_errors_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("grpo:\n  group_size: 1\n")
    assert cli.main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("grpo-lab train: error:") and "grpo.group_size = 1" in err and str(path) in err


def test_pass_at_k_with_k_larger_than_the_samples_drawn_is_an_error():
    """The decision: pass_at_k itself raises (it is where k meets n). score_exam and the trainer
    report pass@k only for the k ≤ eval.k samples drawn, so a run never asks for more."""
    with pytest.raises(ValueError, match=r"k=32 is larger than the n=16 samples drawn"):
        pass_at_k(16, 3, 32)
    result = score_exam(["q"], ["1"], [["<answer>1</answer>", "<answer>2</answer>"]], ks=(1, 2, 4))
    assert "pass@2" in result.metrics and "pass@4" not in result.metrics


# ------------------------------------------------------------------------------------ models
@pytest.mark.parametrize("name", ["/definitely/not/here", "./not-here", "~/not-here-either", "a/b/c"])
def test_model_path_that_does_not_exist_is_named(name):
    with pytest.raises(FileNotFoundError) as info:
        load_model_and_tokenizer(ModelConfig(name_or_path=name, device="cpu"))
    assert repr(name) in str(info.value) and "no such directory" in str(info.value)


def test_unknown_hub_id_offline_is_explained(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError) as info:
        load_model_and_tokenizer(ModelConfig(name_or_path="no-such-org/no-such-model-xyz", device="cpu"))
    assert "'no-such-org/no-such-model-xyz'" in str(info.value) and "local Hugging Face cache" in str(info.value)


def test_directory_without_a_model_is_explained(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError) as info:
        load_model_and_tokenizer(ModelConfig(name_or_path=str(tmp_path / "empty"), device="cpu"))
    assert str(tmp_path / "empty") in str(info.value)


def test_pickled_weights_are_refused(tiny_model_dir, tmp_path):
    """Weights come from safetensors only: a pytorch_model.bin (a pickle) is not loaded."""
    from safetensors.torch import load_file

    bin_dir = tmp_path / "bin_model"
    shutil.copytree(tiny_model_dir, bin_dir)
    weights = load_file(str(bin_dir / "model.safetensors"))
    (bin_dir / "model.safetensors").unlink()
    torch.save(weights, bin_dir / "pytorch_model.bin")
    with pytest.raises(OSError) as info:
        load_model_and_tokenizer(ModelConfig(name_or_path=str(bin_dir), device="cpu"))
    assert "safetensors" in str(info.value) and str(bin_dir) in str(info.value)


def test_tokenizer_without_pad_token_pads_with_eos(tiny_model_dir, tmp_path, tiny_exam):
    """Handled, not an error: many base models ship without a pad token."""
    from transformers import AutoTokenizer

    no_pad = tmp_path / "no_pad"
    shutil.copytree(tiny_model_dir, no_pad)
    tok = AutoTokenizer.from_pretrained(no_pad)
    tok.pad_token = None
    tok.save_pretrained(no_pad)
    assert AutoTokenizer.from_pretrained(no_pad).pad_token is None
    loaded = load_tokenizer(str(no_pad))
    assert loaded.pad_token == loaded.eos_token and loaded.padding_side == "left"
    cfg = tiny_config(no_pad, tiny_exam, tmp_path / "run", steps=1)
    cfg.eval.at_start = False
    df = GRPOTrainer(cfg, run_dir=tmp_path / "run").train()
    assert list(df["step"]) == [1]


def test_trust_remote_code_is_off_unless_asked_and_weights_come_from_safetensors(tiny_model_dir, monkeypatch):
    import transformers

    seen = {}
    for cls in (transformers.AutoTokenizer, transformers.AutoModelForCausalLM):
        original = cls.from_pretrained

        def spy(*args, _original=original, _name=cls.__name__, **kwargs):
            seen[_name] = kwargs
            return _original(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    assert ModelConfig().trust_remote_code is False
    load_model_and_tokenizer(ModelConfig(name_or_path=str(tiny_model_dir), device="cpu", lora_r=4))
    assert seen["AutoTokenizer"]["trust_remote_code"] is False
    assert seen["AutoModelForCausalLM"]["trust_remote_code"] is False
    assert seen["AutoModelForCausalLM"]["use_safetensors"] is True


# ------------------------------------------------------------------------------------ prompts
def test_training_prompt_longer_than_the_context_is_reported_before_training(tiny_model_dir, tiny_exam, tmp_path):
    long_question = " + ".join(["1"] * 400) + " = ?"
    train = write_lines(tmp_path / "train.jsonl", [GOOD, json.dumps({"question": long_question, "answer": "400"})])
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run")
    cfg.data.train = str(train)
    msg = message(lambda: GRPOTrainer(cfg, run_dir=tmp_path / "run"))
    assert f"data.train ({train}): prompt 1 has" in msg
    assert "context window 256 - grpo.max_new_tokens 12" in msg and "1 + 1 + 1" in msg


def test_exam_prompt_longer_than_max_prompt_length_is_reported(tiny_model_dir, tiny_exam, tmp_path):
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", max_prompt_length=4)
    msg = message(lambda: GRPOTrainer(cfg, run_dir=tmp_path / "run"))
    assert f"eval.exam ({tiny_exam}): prompt 0 has" in msg and "grpo.max_prompt_length = 4" in msg


def test_overlong_prompt_mid_run_keeps_log_and_checkpoints(tiny_model_dir, tiny_exam, tmp_path):
    """A prompt drawn mid-run that does not fit stops training; steps done so far stay on disk."""
    run_dir = tmp_path / "run"
    cfg = tiny_config(tiny_model_dir, tiny_exam, run_dir, steps=4)
    cfg.tracking.save_every = 1
    trainer = GRPOTrainer(cfg, run_dir=run_dir)
    draw = trainer.prompts.next

    def next_rows(n):
        rows = draw(n)
        if trainer.step == 2:
            rows[0] = {**rows[0], "question": " + ".join(["1"] * 400) + " = ?"}
        return rows

    trainer.prompts.next = next_rows
    with pytest.raises(ValueError, match=r"data.train \(micro\): prompt 0 has \d+ tokens") as info:
        trainer.train()
    assert str(run_dir) in "\n".join(info.value.__notes__)
    assert latest_checkpoint(run_dir).name == "step-000002"
    df = load_run(run_dir)
    assert list(df["step"]) == [0, 1, 2] and df.attrs["summary"]["step0"]


# ------------------------------------------------------------------------------ issue 19: clear messages
@pytest.mark.parametrize(
    "override, fragment",
    [
        ("grpo.lr=1e400", "grpo.lr must be a finite number, got '1e400' (= inf)"),
        ("grpo.lr=.inf", "grpo.lr must be a finite number, got inf"),
        ("grpo.beta=.nan", "grpo.beta must be a finite number, got nan"),
        ("grpo.max_grad_norm=-.inf", "grpo.max_grad_norm must be a finite number"),
        ("grpo.seed=-1", "grpo.seed = -1 must be in [0, 2**32)"),
        ("model.device=tpu", "model.device = 'tpu' must be"),
        ("rewards.functions=[nope]", "unknown reward 'nope'"),
        ("tracking.wandb_timeout=0", "tracking.wandb_timeout = 0.0 must be > 0"),
    ],
)
def test_hostile_config_values_name_the_key(override, fragment):
    """Before: inf passed validation; seed=-1 named no key; [nope] complained about the weights."""
    with pytest.raises(ConfigError) as info:
        Config().with_overrides([override])
    assert fragment in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_device_without_cuda_is_explained(device):
    from grpo_lab.models import resolve_device

    with pytest.raises(ValueError, match=f"model.device = '{device}' but CUDA is not available"):
        resolve_device(device)


def test_null_question_is_called_null_not_missing(tmp_path):
    path = write_lines(tmp_path / "train.jsonl", [GOOD, json.dumps({"question": None, "answer": "3"})])
    msg = message(lambda: load_dataset_file(path))
    assert f"{path}:2" in msg and "the 'question' field is null" in msg


def _without_loading_bars(err: str) -> str:
    """stderr less transformers' "Loading weights" bar (shown or not depending on earlier tests' settings)."""
    return "\n".join(line for line in err.replace("\r", "\n").split("\n") if line and "Loading weights" not in line)


def _adapter_dir(tmp_path, tiny_model_dir, kind: str) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    good = tmp_path / "good_adapter"
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    model.save_pretrained(good)
    path = tmp_path / kind
    path.mkdir()
    shutil.copy(good / "adapter_config.json", path)
    if kind == "benign_bin":
        from safetensors.torch import load_file

        torch.save(load_file(str(good / "adapter_model.safetensors")), path / "adapter_model.bin")
    elif kind == "malicious_bin":
        import pickle

        class Payload:
            def __reduce__(self):
                return (Path.touch, (tmp_path / "pwned",))

        (path / "adapter_model.bin").write_bytes(pickle.dumps(Payload()))
    return path


@pytest.mark.parametrize(
    "kind, fragment",
    [
        ("malicious_bin", "has adapter_model.bin but no adapter_model.safetensors; grpo-lab loads adapter weights "
                          "from safetensors only"),
        ("benign_bin", "has adapter_model.bin but no adapter_model.safetensors"),
        ("no_weights", "adapter_config.json but no adapter_model.safetensors"),
    ],
)
def test_eval_adapter_must_be_safetensors(tiny_model_dir, tmp_path, capsys, kind, fragment):
    """Before: a benign .bin adapter was loaded (README promises safetensors only), a malicious one gave
    an UnpicklingError traceback, and a directory without weights "Repo id must be in the form..."."""
    adapter = _adapter_dir(tmp_path, tiny_model_dir, kind)
    args = ["eval", "--set", f"model.name_or_path={tiny_model_dir}", "--set", "model.device=cpu", "--adapter", str(adapter)]
    assert cli.main(args) == 2
    # Only the CLI's own line counts (a "Loading weights" bar from building the adapter may come first).
    err = next(line for line in capsys.readouterr().err.splitlines() if "grpo-lab eval: error:" in line)
    assert err.startswith("grpo-lab eval: error:") and str(adapter) in err and fragment in err
    assert not (tmp_path / "pwned").exists()


def test_eval_out_that_is_a_file_fails_before_the_exam(tmp_path, capsys, monkeypatch):
    import grpo_lab.models

    monkeypatch.setattr(grpo_lab.models, "load_model_and_tokenizer",
                        lambda cfg: pytest.fail("the model was loaded before --out was checked"))
    out = tmp_path / "taken.txt"
    out.write_text("x")
    assert cli.main(["eval", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--out {out}: a file is there" in err


def _small_run(tmp_path) -> Path:
    from grpo_lab.tracking import RunLogger

    run_dir = tmp_path / "run"
    with RunLogger(run_dir, {"name": "x"}, wandb_mode="disabled") as logger:
        for step in (1, 2, 3):
            logger.log({"reward": step / 10, "note": "é"}, step=step)
        logger.summary({"final": {"pass@1": 0.5}})
    return run_dir


def test_corrupt_summary_json_is_named(tmp_path, capsys):
    run_dir = _small_run(tmp_path)
    (run_dir / "summary.json").write_text('{"final": {"pass@1": 0.')
    msg = message(lambda: load_run(run_dir))
    assert f"{run_dir / 'summary.json'}: not a valid summary file" in msg
    assert cli.main(["report", str(run_dir)]) == 2
    assert "summary.json: not a valid summary file" in capsys.readouterr().err


def test_non_utf8_metrics_line_is_named(tmp_path):
    run_dir = _small_run(tmp_path)
    lines = (run_dir / "metrics.jsonl").read_bytes().split(b"\n")
    lines[1] = lines[1][:5] + b"\xff\xfe" + lines[1][5:]
    (run_dir / "metrics.jsonl").write_bytes(b"\n".join(lines))
    msg = message(lambda: load_run(run_dir))
    assert f"{run_dir / 'metrics.jsonl'}: line 2 is not UTF-8 text" in msg


def test_torn_last_line_cut_inside_a_utf8_character_is_skipped_and_repaired(tmp_path):
    from grpo_lab.tracking import RunLogger, read_jsonl

    run_dir = _small_run(tmp_path)
    with open(run_dir / "metrics.jsonl", "ab") as f:
        f.write('{"step": 4, "note": "é'.encode()[:-1])  # the crash cut the two-byte é in half
    with pytest.warns(UserWarning, match="skipping torn last line 4"):
        assert list(load_run(run_dir)["step"]) == [1, 2, 3]
    with pytest.warns(UserWarning, match="torn"):
        RunLogger(run_dir, {"name": "x"}, wandb_mode="disabled", resume=True).close()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl")] == [1, 2, 3]


def test_report_accepts_a_file_inside_the_run_directory(tmp_path, capsys):
    run_dir = _small_run(tmp_path)
    assert cli.main(["report", str(run_dir / "metrics.jsonl")]) == 0
    assert (run_dir / "report.md").exists()


def test_ctrl_c_prints_the_resume_note_without_a_traceback(tiny_model_dir, tiny_exam, tmp_path, capsys, monkeypatch):
    """Before: a 29-line KeyboardInterrupt traceback came before the (good) resume note."""
    import grpo_lab.trainer as trainer_module

    real = trainer_module.GRPOTrainer.training_step
    monkeypatch.setattr(trainer_module.GRPOTrainer, "training_step",
                        lambda self: (_ for _ in ()).throw(KeyboardInterrupt()) if self.step == 1 else real(self))
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=3)
    cfg.tracking.save_every = 1
    path = tmp_path / "c.yaml"
    cfg.to_yaml(path)
    assert cli.main(["train", "--config", str(path)]) == 130
    err = _without_loading_bars(capsys.readouterr().err)
    assert "Traceback" not in err and err.startswith("grpo-lab train: interrupted")
    assert f"grpo-lab train --resume {tmp_path / 'run'}" in err and "after step 1 of 3" in err


def test_a_full_disk_while_checkpointing_says_what_failed_and_how_to_resume(
    tiny_model_dir, tiny_exam, tmp_path, capsys, monkeypatch
):
    import errno

    import grpo_lab.trainer as trainer_module

    real_save = torch.save

    def full(obj, path, *args, **kwargs):
        if "step-000002" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(trainer_module.torch, "save", full)
    cfg = tiny_config(tiny_model_dir, tiny_exam, tmp_path / "run", steps=3)
    cfg.tracking.save_every = 1
    path = tmp_path / "c.yaml"
    cfg.to_yaml(path)
    assert cli.main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "writing checkpoint step-000002" in err and "No space left on device" in err
    assert "step-000001" in err and f"grpo-lab train --resume {tmp_path / 'run'}" in err
