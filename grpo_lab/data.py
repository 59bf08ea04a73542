"""Datasets and prompt templates.

A dataset here is a list of dict rows with (at least) a question and an answer. Files are jsonl
(or parquet); a malformed line, a row without the question/answer field, or an empty file is an
error naming the file and line.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

# DeepSeek-R1 paper, Table 1: the R1-Zero training template ({prompt} is the question).
R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> "
    "tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>. "
    "User: {prompt}. Assistant:"
)


# For instruct models: the chat template with the R1-Zero instructions as the system message.
# Why: an instruct model given only the question answers in its own style and never earns the
# format reward; the instructions are Table 1's, minus the "User:/Assistant:" framing the chat
# template already provides.
R1_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> "
    "tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>."
)


# "r1_chat_think" opens the assistant's turn with "<think>" (a prefill, as TinyZero's template ends
# in "<think>"). Why: a small instruct model such as SmolLM2-135M never writes the tags on its own
# (0 of 64 samples at T 1.0, measured), so RL on the format reward has nothing to amplify; with the
# think block opened, closing it and writing <answer> happens at a low rate that RL can raise. The
# rewards and the exam judge the assistant's text, prefill included (grpo_lab.rewards.assistant_text).
TEMPLATE_PREFILL = {"r1_chat_think": "<think>"}


def format_prompt(question: str, template: str = "r1_zero", tokenizer=None) -> str:
    """Put a question in the template the config names ("r1_zero", "chat", "r1_chat", "r1_chat_think" or "micro").

    "chat" is the tokenizer's chat template with the question as the only (user) message;
    "r1_chat" adds the R1-Zero instructions as the system message (for instruct models);
    "r1_chat_think" is "r1_chat" with the assistant's turn opened by "<think>" (TEMPLATE_PREFILL).
    """
    if template == "r1_zero":
        return R1_ZERO_TEMPLATE.format(prompt=question)
    if template == "micro":
        from grpo_lab.micro_world import prompt_for

        return prompt_for(question)
    if template in ("chat", "r1_chat", "r1_chat_think"):
        if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(f"data.template = {template!r} needs a tokenizer with a chat_template (an instruct "
                             "model's tokenizer); base models use data.template = 'r1_zero'")
        messages = [{"role": "user", "content": question}]
        if template != "chat":
            messages.insert(0, {"role": "system", "content": R1_SYSTEM_PROMPT})
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return prompt + TEMPLATE_PREFILL.get(template, "")
    raise ValueError(f"data.template = {template!r}; allowed: 'r1_zero', 'chat', 'r1_chat', 'r1_chat_think', 'micro'")


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


def load_rows(spec: str, question_field: str, answer_field: str, what: str, role: str) -> list[dict]:
    """A jsonl/parquet file, or a named benchmark such as "gsm8k:path/test.jsonl" (grpo_lab.datasets)."""
    from grpo_lab.datasets import load_benchmark, parse_spec

    if parse_spec(spec) is not None:
        return load_benchmark(spec, role, question_field, answer_field, what=what)
    return load_dataset_file(spec, question_field, answer_field, what)


def load_exam(spec: str, question_field: str = "question", answer_field: str = "answer") -> list[dict]:
    """The exam set: "micro" (the committed held-out micro-world exam), a jsonl/parquet path, or a
    named benchmark ("math500", "aime24:data/aime24", ...; its test split).

    Each row gets "question" and "answer" keys (copied from the configured fields).
    """
    if spec == "micro":
        from grpo_lab.micro_world import ensure_exam

        spec = str(ensure_exam())
    if spec == "sums":  # grpo_lab.sums: a fixed 30-question exam of short sums
        from grpo_lab.sums import make_sums_exam

        rows = [dict(r, **{question_field: r["question"], answer_field: r["answer"]}) for r in make_sums_exam()]
        return rows
    rows = load_rows(spec, question_field, answer_field, what="eval.exam", role="exam")
    for row in rows:
        row["question"], row["answer"] = row[question_field], row[answer_field]
    return rows


class PromptSource:
    """Training problems: fresh micro-world (or short-sum) problems, or a file's (or benchmark's) rows reshuffled every epoch.

    Its state (RNG, position) is saved in checkpoints so that a resumed run draws the same
    problems as an uninterrupted one.
    """

    def __init__(self, spec: str, seed: int, question_field: str = "question", answer_field: str = "answer",
                 exclude_questions: set[str] | None = None):
        self.spec = spec
        self.question_field, self.answer_field = question_field, answer_field
        if spec == "micro":
            from grpo_lab.micro_world import TaskSampler, exam_keys, make_exam

            self.sampler = TaskSampler(seed=seed, exclude=exam_keys(make_exam()))
            self.rows: list[dict] = []
        elif spec == "sums":
            from grpo_lab.sums import SumsSampler

            self.sampler = SumsSampler(seed=seed)
            self.rows = []
        else:
            self.sampler = None
            rows = load_rows(spec, question_field, answer_field, what="data.train", role="train")
            exclude = exclude_questions or set()
            self.rows = [r for r in rows if str(r[question_field]) not in exclude]
            if not self.rows:
                raise ValueError(f"data.train = {spec}: every training row is also an exam question (eval.exam)")
        self.rng = random.Random(seed)
        self.order: list[int] = []
        self.position = 0

    def next(self, n: int) -> list[dict[str, Any]]:
        """n rows with 'question' and 'answer' keys (plus the file's other columns)."""
        if self.sampler is not None:
            return self.sampler.sample(n)
        out = []
        while len(out) < n:
            if self.position >= len(self.order):
                self.order = list(range(len(self.rows)))
                self.rng.shuffle(self.order)
                self.position = 0
            row = dict(self.rows[self.order[self.position]])
            row["question"], row["answer"] = row[self.question_field], row[self.answer_field]
            out.append(row)
            self.position += 1
        return out

    def state_dict(self) -> dict:
        state = {"rng": self.rng.getstate(), "order": self.order, "position": self.position}
        if self.sampler is not None:
            state["sampler"] = self.sampler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.order, self.position = list(state["order"]), int(state["position"])
        if self.sampler is not None:
            self.sampler.load_state_dict(state["sampler"])
