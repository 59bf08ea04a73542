"""The package's layering is kept by a tool: import-linter's contracts in pyproject.toml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():  # an environment whose scripts are elsewhere on PATH
        lint = Path(shutil.which("lint-imports") or lint)
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(lint), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_package_keeps_its_import_contracts():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_a_new_import_cycle_breaks_the_contracts(tmp_path):
    """The check above can fail: a copy of the package where rewards imports the trainer is refused."""
    shutil.copytree(ROOT / "grpo_lab", tmp_path / "grpo_lab", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    rewards = tmp_path / "grpo_lab" / "rewards.py"
    rewards.write_text(rewards.read_text() + "\n\ndef _cycle():\n    from grpo_lab import trainer  # noqa\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "grpo_lab.rewards" in result.stdout
