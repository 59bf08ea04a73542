"""Check a config's reward functions before training: `grpo-lab check-rewards --config FILE`.

A reward that cannot give full marks to a perfect answer, or that pays for an empty one, wastes a
whole run, and it is cheap to find out first. For every reward function of the config:

1. **gold answers get full marks**: each exam question's gold answer, written the way the template
   asks (`<think> … </think> <answer> GOLD </answer>`, without the `<think>` a template prefills),
   must score 1.0;
2. **empty and garbled completions get zero**: "", whitespace, and text without any tag must score 0.0;

and 3. the exam's gold answers that the grader cannot parse are listed (grpo_lab.rewards.answer_is_readable):
an unparseable gold answer can never be matched, so that question is lost for every run.

The coin-flip reward ignores the text by design and is not checked. Only the template's prefill is
part of the prompt the functions see: no built-in reward reads more of the prompt than that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from grpo_lab.config import Config
from grpo_lab.data import TEMPLATE_PREFILL, load_exam
from grpo_lab.rewards import (
    answer_is_readable,
    compute_rewards,
    extract_answer,
    get_reward_function,
)

GARBLED: tuple[str, ...] = ("", "   \n", "zxq vbn qwerty", "!!! ??? ...", "12 34 56 78", "ÿ¿ ¤¤ ≠≠")
"""Completions every reward (but the coin flip) must score 0: empty, blank, and tagless noise."""

NOT_CHECKED = {"coin_flip": "ignores the text by design (the control)"}
REASONING = {"en": "I add the numbers step by step and check the result.", "zh": "我一步一步地计算并检查结果。"}
"""The think part of a gold completion (in the target language, for language_consistency)."""


def gold_completion(answer: object, template: str, language: str = "en") -> str:
    """A perfect completion for a gold answer, as the template asks for it."""
    text = f"<think> {REASONING.get(language, REASONING['en'])} </think> <answer> {answer} </answer>"
    prefill = TEMPLATE_PREFILL.get(template, "")
    return text[len(prefill):] if prefill and text.startswith(prefill) else text


@dataclass
class RewardCheck:
    """The outcome: one row per reward function, the unparseable gold answers, and pass/fail."""

    table: pd.DataFrame
    unparseable_gold: list[dict]
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_text(self) -> str:
        lines = [self.table.to_string(), ""]
        if self.unparseable_gold:
            lines.append(f"{len(self.unparseable_gold)} gold answer(s) the grader cannot parse (these questions "
                         "can never be scored right):")
            lines += [f"  question {g['index']}: {g['answer']!r}" for g in self.unparseable_gold[:20]]
        else:
            lines.append("every gold answer parses")
        lines += [""] + ([f"FAIL: {f}" for f in self.failures] or ["all reward checks pass"])
        return "\n".join(lines)


def check_rewards(config: Config) -> RewardCheck:
    """Run the three checks of this module on a config's reward functions and exam."""
    exam = load_exam(config.eval.exam, config.data.question_field, config.data.answer_field)
    template, language = config.data.template, config.rewards.target_language
    prompt = TEMPLATE_PREFILL.get(template, "")
    columns = {k: [row.get(k) for row in exam] for k in dict.fromkeys(k for r in exam for k in r) if k != "question"}
    golds = [gold_completion(row["answer"], template, language) for row in exam]
    rows, failures = [], []
    for name in config.rewards.functions:
        func = get_reward_function(name)
        if name in NOT_CHECKED:
            rows.append({"reward": name, "gold: full marks": "—", "empty/garbled: zero": "—",
                         "note": f"not checked: {NOT_CHECKED[name]}"})
            continue
        extra = {"target_language": language} if name == "language_consistency" else {}
        _, gold_scores = compute_rewards({name: func}, None, [prompt] * len(golds), golds, {**columns, **extra})
        bad_gold = [i for i, r in enumerate(gold_scores[name]) if r != 1.0]
        noise_cols = {k: [v[0]] * len(GARBLED) for k, v in columns.items()}
        _, noise_scores = compute_rewards({name: func}, None, [prompt] * len(GARBLED), list(GARBLED),
                                          {**noise_cols, **extra})
        bad_noise = [GARBLED[i] for i, r in enumerate(noise_scores[name]) if r != 0.0]
        note = ""
        if bad_gold:
            i = bad_gold[0]
            note = f"gold of question {i} scored {gold_scores[name][i]}: {golds[i]!r}"
            failures.append(f"{name}: {len(bad_gold)} of {len(golds)} gold answers do not get full marks ({note})")
        if bad_noise:
            failures.append(f"{name}: pays for empty or garbled completions, e.g. {bad_noise[0]!r}")
            note = (note + "; " if note else "") + f"pays for {bad_noise[0]!r}"
        rows.append({"reward": name, "gold: full marks": f"{len(golds) - len(bad_gold)}/{len(golds)}",
                     "empty/garbled: zero": f"{len(GARBLED) - len(bad_noise)}/{len(GARBLED)}", "note": note})
    unparseable = [{"index": i, "question": row["question"], "answer": row["answer"]} for i, row in enumerate(exam)
                   if not answer_is_readable(extract_answer(f"<answer> {row['answer']} </answer>"))]
    if unparseable:
        failures.append(f"{len(unparseable)} gold answer(s) cannot be parsed by the grader")
    return RewardCheck(table=pd.DataFrame(rows).set_index("reward"), unparseable_gold=unparseable, failures=failures)
