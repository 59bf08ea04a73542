"""Reading question/answer rows from a local file (jsonl or parquet), with errors that name the file and line.

Below both `data` (training prompts and the exam) and `datasets` (named benchmarks), which each read
local files through these functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load_jsonl(path: str | Path, question_field: str = "question", answer_field: str = "answer",
               what: str = "dataset") -> list[dict]:
    """Rows of a jsonl file, each checked for the question and answer fields.

    Every problem is an error that names the file and line: a missing file, a line that is not
    valid JSON (or not UTF-8, or not an object), a row without the question or answer field, an
    empty file. `what` says which config key pointed here (e.g. "data.train"), for the messages.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} file not found: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"{what}: {path} is a directory; expected a .jsonl file")
    rows: list[dict] = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid UTF-8 text ({exc.reason}); is it a jsonl file?") from exc
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg}): {line.strip()[:80]!r}") from exc
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: each line must be a JSON object, got {type(row).__name__}")
            _check_row(row, f"{path}:{lineno}", question_field, answer_field)
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no rows ({what} is empty)")
    return rows


def _check_row(row: dict, where: str, question_field: str | None, answer_field: str | None) -> None:
    if question_field is None:  # raw rows (grpo_lab.datasets maps a benchmark's own columns itself)
        return
    for key, setting in ((question_field, "data.question_field"), (answer_field, "data.answer_field")):
        if key not in row:
            raise ValueError(
                f"{where}: row has no {key!r} field (fields: {sorted(row)}); "
                f"set {setting} to the column that holds it"
            )
        if row[key] is None:
            raise ValueError(f"{where}: the {key!r} field is null ({setting} = {key!r}); every row needs a value")


def load_parquet(path: str | Path, question_field: str = "question", answer_field: str = "answer",
                 what: str = "dataset") -> list[dict]:
    """Rows of a parquet file, checked like `load_jsonl` (errors name the file and row)."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 -- pyarrow raises many types; say which file
        raise ValueError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc})") from exc
    rows = []
    for i, row in enumerate(df.to_dict(orient="records")):
        row = {k: (None if _is_missing(v) else v) for k, v in row.items()}
        _check_row(row, f"{path}: row {i}", question_field, answer_field)
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no rows ({what} is empty)")
    return rows


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def load_dataset_file(path: str | Path, question_field: str = "question", answer_field: str = "answer",
                      what: str = "dataset") -> list[dict]:
    """A jsonl (.jsonl/.json, one object a line) or parquet (.parquet) file of question/answer rows."""
    if Path(path).suffix.lower() == ".parquet":
        return load_parquet(path, question_field, answer_field, what)
    return load_jsonl(path, question_field, answer_field, what)
