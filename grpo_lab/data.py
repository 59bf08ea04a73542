"""Datasets and prompt templates.

A dataset here is a list of dict rows with (at least) a question and an answer. Files are jsonl
(or parquet); a malformed line, a row without the question/answer field, or an empty file is an
error naming the file and line.
"""

from __future__ import annotations

import random
from typing import Any

from grpo_lab.datafiles import load_dataset_file, load_jsonl, load_parquet  # noqa: F401  (re-exported)
from grpo_lab.datasets import load_benchmark, parse_spec
from grpo_lab.micro_world import TaskSampler, ensure_exam, exam_keys, make_exam, prompt_for
from grpo_lab.plain import random_state_from_json, random_state_to_json
from grpo_lab.sums import SumsSampler, make_sums_exam

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


def load_rows(spec: str, question_field: str, answer_field: str, what: str, role: str) -> list[dict]:
    """A jsonl/parquet file, or a named benchmark such as "gsm8k:path/test.jsonl" (grpo_lab.datasets)."""
    if parse_spec(spec) is not None:
        return load_benchmark(spec, role, question_field, answer_field, what=what)
    return load_dataset_file(spec, question_field, answer_field, what)


def load_exam(spec: str, question_field: str = "question", answer_field: str = "answer") -> list[dict]:
    """The exam set: "micro" (the committed held-out micro-world exam), a jsonl/parquet path, or a
    named benchmark ("math500", "aime24:data/aime24", ...; its test split).

    Each row gets "question" and "answer" keys (copied from the configured fields).
    """
    if spec == "micro":
        spec = str(ensure_exam())
    if spec == "sums":  # grpo_lab.sums: a fixed 30-question exam of short sums
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
            self.sampler = TaskSampler(seed=seed, exclude=exam_keys(make_exam()))
            self.rows: list[dict] = []
        elif spec == "sums":
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
        """JSON-safe state (the generator, the epoch's order and the position in it)."""
        state = {"rng": random_state_to_json(self.rng.getstate()), "order": self.order, "position": self.position}
        if self.sampler is not None:
            state["sampler"] = self.sampler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(random_state_from_json(state["rng"]))
        self.order, self.position = list(state["order"]), int(state["position"])
        if self.sampler is not None:
            self.sampler.load_state_dict(state["sampler"])
