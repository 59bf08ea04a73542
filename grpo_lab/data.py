"""Datasets and prompt templates.

A dataset here is a list of dict rows with (at least) a question and an answer. Files are jsonl;
a malformed line, or a row without the question/answer field, is an error naming the file and line.
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


def format_prompt(question: str, template: str = "r1_zero", tokenizer=None) -> str:
    """Put a question in the template the config names ("r1_zero", "chat" or "micro")."""
    if template == "r1_zero":
        return R1_ZERO_TEMPLATE.format(prompt=question)
    if template == "micro":
        from grpo_lab.micro_world import prompt_for

        return prompt_for(question)
    if template == "chat":
        if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("data.template = 'chat' needs a tokenizer with a chat_template")
        messages = [{"role": "user", "content": question}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    raise ValueError(f"data.template = {template!r}; allowed: 'r1_zero', 'chat', 'micro'")


def load_jsonl(path: str | Path, question_field: str = "question", answer_field: str = "answer") -> list[dict]:
    """Rows of a jsonl file, each checked for the question and answer fields."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset file not found: {path}")
    rows: list[dict] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: each line must be a JSON object, got {type(row).__name__}")
            for key in (question_field, answer_field):
                if key not in row or row[key] is None:
                    raise ValueError(f"{path}:{lineno}: row has no {key!r} field (fields: {sorted(row)})")
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: the dataset is empty")
    return rows


def load_exam(spec: str, question_field: str = "question", answer_field: str = "answer") -> list[dict]:
    """The exam set: "micro" (the committed held-out micro-world exam) or a jsonl path."""
    if spec == "micro":
        from grpo_lab.micro_world import ensure_exam

        spec = str(ensure_exam())
    return load_jsonl(spec, question_field, answer_field)


class PromptSource:
    """Training problems: fresh micro-world problems, or a file's rows reshuffled every epoch.

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
        else:
            self.sampler = None
            rows = load_jsonl(spec, question_field, answer_field)
            exclude = exclude_questions or set()
            self.rows = [r for r in rows if str(r[question_field]) not in exclude]
            if not self.rows:
                raise ValueError(f"{spec}: every training row is also an exam question")
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
