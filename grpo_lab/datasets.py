"""Real benchmarks by name: GSM8K, MATH, MATH-500, AIME 2024/2025 and Countdown.

A config names a benchmark where it would name a file, in ``data.train`` or ``eval.exam``::

    NAME                 from the Hugging Face hub (or its local cache), e.g. gsm8k
    NAME:PATH            from a local .jsonl/.parquet file, or a directory of them (a hub download)
    NAME[a:b]            rows a..b only (Python slice), e.g. math500[:100], countdown[-200:]
    NAME[a:b]:PATH       both

Why names and not bare files: each benchmark keeps its gold answer in its own place (GSM8K after
``####``, MATH in the last ``\\boxed{…}`` of the solution, AIME as an integer, Countdown as
numbers and a target), and the loader turns every one into the same row: the question under
``data.question_field`` and the gold answer under ``data.answer_field`` (``question``/``answer`` by
default), the source's other columns kept (GSM8K's full solution becomes ``solution``), so the
rule-based rewards (grpo_lab.rewards) grade all of them alike. Countdown rows also keep ``nums``
and ``target`` for the ``countdown`` reward.

From the hub, ``data.train`` reads the benchmark's training split and ``eval.exam`` its test split.
Offline (``HF_HUB_OFFLINE=1``) and not cached, loading fails with a message that names the hub id
and says how to download the files and point the config at them. A bad local row is an error that
names the file and row.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grpo_lab.answers import last_boxed_content
from grpo_lab.countdown import countdown_prompt
from grpo_lab.datafiles import load_dataset_file
from grpo_lab.plain import to_plain


class DatasetUnavailableError(FileNotFoundError):
    """A named benchmark could not be loaded from the hub or its cache; the message says how to get it."""


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    hub_id: str
    hub_configs: tuple[str | None, ...]
    """Hub configurations loaded and concatenated (AIME 2025 comes as parts I and II)."""
    splits: dict[str, str]
    """{"train": hub split for data.train, "exam": hub split for eval.exam}."""
    question_columns: tuple[str, ...]
    gold: Callable[[dict, str], str]
    """(raw row, where) → the gold answer as a string; raises ValueError naming `where`."""
    rewards: str
    """Which reward functions grade it (for docs and error messages)."""


# ------------------------------------------------------------------------------- gold answers
def _column(row: dict, names: tuple[str, ...], where: str, what: str) -> Any:
    for name in names:
        for key in (name, name.capitalize(), name.upper()):
            if key in row and row[key] is not None:
                return row[key]
    raise ValueError(f"{where}: row has no {what} column (looked for {list(names)}; fields: {sorted(row)})")


def gsm8k_gold(row: dict, where: str) -> str:
    """GSM8K: the number after the last ``####`` of the answer (commas dropped)."""
    text = str(_column(row, ("answer",), where, "answer"))
    if "####" in text:
        gold = text.rsplit("####", 1)[1].strip().replace(",", "")
    else:  # already reduced to the final number by some preprocessing: accept a plain number only
        gold = text.strip().replace(",", "")
    if not re.fullmatch(r"[+-]?\d+(\.\d+)?", gold):
        raise ValueError(f"{where}: GSM8K answer has no number after '####': {text[-80:]!r}")
    return gold


def last_boxed(text: str) -> str | None:
    r"""The brace-matched content of the last ``\boxed{…}`` (or ``\fbox{…}``) in text, else None."""
    return last_boxed_content(text.replace("\\fbox{", "\\boxed{"))


def math_gold(row: dict, where: str) -> str:
    r"""MATH / MATH-500: the ``answer`` column when there is one, else the last ``\boxed{…}`` of the solution."""
    if row.get("answer") not in (None, ""):
        return str(row["answer"]).strip()
    solution = str(_column(row, ("solution",), where, "solution or answer"))
    boxed = last_boxed(solution)
    if boxed is None or not boxed.strip():
        raise ValueError(f"{where}: MATH solution has no closed \\boxed{{…}} answer: {solution[-80:]!r}")
    return boxed.strip()


def aime_gold(row: dict, where: str) -> str:
    """AIME: an integer from 0 to 999 ("033" and 33.0 are 33)."""
    raw = _column(row, ("answer",), where, "answer")
    text = str(raw).strip()
    m = re.fullmatch(r"\$?\\?(?:boxed\{)?\s*(\d+)(?:\.0+)?\s*\}?\$?", text)
    if not m or not 0 <= int(m.group(1)) <= 999:
        raise ValueError(f"{where}: AIME answer must be an integer from 0 to 999, got {raw!r}")
    return str(int(m.group(1)))


def countdown_gold(row: dict, where: str) -> str:
    nums, target = _countdown_fields(row, where)
    return str(target)


def _countdown_fields(row: dict, where: str) -> tuple[list[int], int]:
    nums, target = row.get("nums"), row.get("target")
    try:
        nums = [int(n) for n in list(nums)]
        if isinstance(target, float) and not target.is_integer():
            raise ValueError
        target = int(target)
    except (TypeError, ValueError):
        raise ValueError(
            f"{where}: a Countdown row needs 'nums' (a list of integers) and 'target' (an integer); "
            f"got nums={row.get('nums')!r}, target={row.get('target')!r}"
        ) from None
    if not nums:
        raise ValueError(f"{where}: Countdown 'nums' is empty")
    return nums, target


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in [
        Benchmark("gsm8k", "GSM8K", "openai/gsm8k", ("main",), {"train": "train", "exam": "test"},
                  ("question",), gsm8k_gold, "accuracy, format"),
        Benchmark("math", "MATH (Hendrycks et al.)", "DigitalLearningGmbH/MATH-lighteval", ("default",),
                  {"train": "train", "exam": "test"}, ("problem",), math_gold, "accuracy, format"),
        Benchmark("math500", "MATH-500", "HuggingFaceH4/MATH-500", (None,), {"train": "test", "exam": "test"},
                  ("problem",), math_gold, "accuracy, format"),
        Benchmark("aime24", "AIME 2024", "HuggingFaceH4/aime_2024", (None,), {"train": "train", "exam": "train"},
                  ("problem", "question"), aime_gold, "accuracy, format"),
        Benchmark("aime25", "AIME 2025", "opencompass/AIME2025", ("AIME2025-I", "AIME2025-II"),
                  {"train": "test", "exam": "test"}, ("question", "problem"), aime_gold, "accuracy, format"),
        Benchmark("countdown", "Countdown (TinyZero)", "Jiayi-Pan/Countdown-Tasks-3to4", (None,),
                  {"train": "train", "exam": "train"}, (), countdown_gold, "countdown, format"),
    ]
}

_SPEC = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_]*)(?:\[(?P<slice>[^\]]*)\])?(?::(?P<source>.+))?$")


@dataclass(frozen=True)
class DatasetSpec:
    benchmark: Benchmark
    rows: slice
    source: str | None
    """A local file or directory; None: the hub."""


def parse_spec(spec: str) -> DatasetSpec | None:
    """The named-benchmark reading of a data.train / eval.exam value, or None when it is a plain file.

    Raises ValueError for a name-like spec (``NAME:…`` or ``NAME[…]``) whose name is unknown or
    whose slice is malformed, unless it is an existing path.
    """
    m = _SPEC.match(spec.strip())
    if not m:
        return None
    name = m.group("name").lower()
    if name not in BENCHMARKS:
        if (m.group("source") or m.group("slice") is not None) and not Path(spec).exists():
            raise ValueError(f"unknown benchmark {m.group('name')!r} in {spec!r}; known: {sorted(BENCHMARKS)}")
        return None
    return DatasetSpec(BENCHMARKS[name], _parse_slice(m.group("slice"), spec), m.group("source"))


def _parse_slice(text: str | None, spec: str) -> slice:
    if text is None:
        return slice(None)
    m = re.fullmatch(r"\s*(-?\d+)?\s*:\s*(-?\d+)?\s*", text)
    if not m:
        raise ValueError(f"{spec!r}: [{text}] is not a row slice; write e.g. [:100], [100:] or [-200:]")
    return slice(*(int(x) if x is not None else None for x in m.groups()))


def is_benchmark_spec(spec: str) -> bool:
    try:
        return parse_spec(spec) is not None
    except ValueError:
        return True


# ---------------------------------------------------------------------------------- loading
def load_benchmark(spec: str, role: str = "train", question_field: str = "question", answer_field: str = "answer",
                   what: str = "data.train") -> list[dict]:
    """Rows of a named benchmark, each with the question and gold answer under the configured fields.

    `role` is "train" (data.train) or "exam" (eval.exam): it picks the hub split and, for a
    directory, which files are read.
    """
    parsed = parse_spec(spec)
    if parsed is None:
        raise ValueError(f"{what} = {spec!r} is not a benchmark name; known: {sorted(BENCHMARKS)}")
    bench = parsed.benchmark
    split = bench.splits[role]
    if parsed.source is None:
        raw = _from_hub(bench, split, what, spec)
    else:
        raw = _from_local(bench, Path(parsed.source).expanduser(), split, what, spec)
    raw = raw[parsed.rows]
    if not raw:
        raise ValueError(f"{what} = {spec!r}: no rows (the slice [{parsed.rows.start}:{parsed.rows.stop}] is empty?)")
    return [_normalise(bench, row, where, question_field, answer_field) for row, where in raw]


def _normalise(bench: Benchmark, row: dict, where: str, question_field: str, answer_field: str) -> dict:
    row = {k: to_plain(v) for k, v in row.items()}
    gold = bench.gold(row, where)
    if bench.name == "countdown":
        nums, target = _countdown_fields(row, where)
        question = countdown_prompt(nums, target)
        row["nums"], row["target"] = nums, target
    else:
        question = str(_column(row, bench.question_columns, where, "question")).strip()
    if answer_field in row and str(row[answer_field]) != gold and "solution" not in row:
        row["solution"] = row[answer_field]  # e.g. GSM8K's worked answer, before "answer" becomes the number
    row[question_field], row[answer_field] = question, gold
    return row


def _from_local(bench: Benchmark, path: Path, split: str, what: str, spec: str) -> list[tuple[dict, str]]:
    if not path.exists():
        raise FileNotFoundError(f"{what} = {spec!r}: {path} does not exist. {download_hint(bench, split, what, spec)}")
    files = _data_files(bench, path, split) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"{what} = {spec!r}: no .jsonl/.json/.parquet files under {path}")
    out: list[tuple[dict, str]] = []
    for file in files:
        rows = load_dataset_file(file, None, None, what=what)
        out.extend((row, f"{file}: row {i + 1}") for i, row in enumerate(rows))
    return out


def _data_files(bench: Benchmark, root: Path, split: str) -> list[Path]:
    """Files of a hub download directory: the benchmark's configuration, then the split, if named."""
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jsonl", ".json", ".parquet")
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    configs = [c for c in bench.hub_configs if c]
    in_config = [p for p in files if any(c in p.relative_to(root).parts for c in configs)]
    files = in_config or files
    in_split = [p for p in files if re.search(rf"(^|[^a-z]){split}([^a-z]|$)", p.relative_to(root).as_posix().lower())]
    return in_split or files


def _from_hub(bench: Benchmark, split: str, what: str, spec: str) -> list[tuple[dict, str]]:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover -- datasets ships with trl/the dev extra
        raise DatasetUnavailableError(f"{what} = {spec!r}: loading from the hub needs `pip install datasets`. "
                                      f"{download_hint(bench, split, what, spec)}") from exc
    out: list[tuple[dict, str]] = []
    for config in bench.hub_configs:
        try:
            ds = datasets.load_dataset(bench.hub_id, config, split=split)
        except Exception as exc:  # noqa: BLE001 -- offline, not cached, renamed, ...: all need the same advice
            offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
            why = "the hub is offline (HF_HUB_OFFLINE=1) and it is not in the local cache" if offline else \
                "it could not be fetched from the hub or found in the local cache"
            raise DatasetUnavailableError(
                f"{what} = {spec!r}: could not load {bench.title} ({bench.hub_id}"
                f"{', ' + config if config else ''}, split {split!r}): {why} "
                f"({type(exc).__name__}: {str(exc)[:200]}). {download_hint(bench, split, what, spec)}"
            ) from exc
        label = f"{bench.hub_id}{'/' + config if config else ''}[{split}]"
        out.extend((dict(row), f"{label}: row {i + 1}") for i, row in enumerate(ds))
    return out


def download_hint(bench: Benchmark, split: str, what: str = "data.train", spec: str | None = None) -> str:
    local = f"data/{bench.name}"
    m = _SPEC.match((spec or bench.name).strip())
    rows = f"[{m.group('slice')}]" if m and m.group("slice") is not None else ""
    return (
        f"To use it offline, download it once on a machine with network: "
        f"`hf download {bench.hub_id} --repo-type dataset --local-dir {local}` "
        f"(or `python -c \"import datasets; datasets.load_dataset('{bench.hub_id}'"
        f"{', ' + repr(bench.hub_configs[0]) if bench.hub_configs[0] else ''})\"` to fill the cache), copy "
        f"{local}/ here and set {what} = {bench.name}{rows}:{local} (e.g. --set \"{what}={bench.name}{rows}:{local}\"; "
        f"a directory: its {split!r} files are read; or name one .jsonl/.parquet file)."
    )
