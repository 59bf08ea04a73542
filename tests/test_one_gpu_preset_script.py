"""benchmarks/one_gpu_preset.py runs (toy sizes on CPU) and reports step times; it refuses full size on CPU."""

from __future__ import annotations

import json

import pytest

from tests.conftest import load_benchmark


def _load():
    return load_benchmark("one_gpu_preset")


def test_script_runs_the_preset_on_a_toy_qwen_shaped_model(tmp_path, capsys):
    out = tmp_path / "result.json"
    code = _load().main(["--device", "cpu", "--num-layers", "1", "--vocab-size", "512", "--steps", "1",
                         "--prompts-per-step", "2", "--group-size", "2", "--max-new-tokens", "4", "--out", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["dtype"] == "bfloat16" and result["gradient_checkpointing"] is True  # the preset's own settings
    assert result["num_layers"] == 1 and [r["step"] for r in result["steps"]] == [1]
    assert all(r["step_time_s"] > 0 for r in result["steps"]) and result["peak_cpu_rss_gib"] > 0
    assert "mean step time" in capsys.readouterr().out


def test_script_refuses_full_size_on_cpu():
    with pytest.raises(SystemExit):
        _load().main(["--device", "cpu"])
