"""How often is an "aha" that grpo_lab.phenomena reports a real correction? Measured, not assumed.

    python benchmarks/aha_precision.py            # 20,000 answers, seed 0 (~10 s)
    python benchmarks/aha_precision.py --n 2000 --seed 1

The labelled set (grpo_lab.micro_world.labelled_aha_set) is written by the micro world's corpus
generator, which knows for every check it writes whether the checked value was wrong and whether
the check corrected it. An answer is a true aha when one of its checks corrected a wrong value.
The detector (find_aha_examples / find_corrections) only sees the text and the final answer's
correctness. Two levels are scored:

- per answer: find_aha_examples returns the answer ⇔ the answer is a true aha;
- per check: find_corrections says ``changed`` ⇔ that check corrected a wrong value (checks are
  matched in order; an answer whose number of detected checks differs counts its checks as missed).

For comparison the rule the project used before (the "after" value read up to the next marker or
the end of the reasoning) is scored on the same set; tests/test_phenomena.py holds the thresholds
(precision ≥ 0.95, recall ≥ 0.90).
"""

from __future__ import annotations

import argparse
import time

from grpo_lab.micro_world import labelled_aha_set
from grpo_lab.phenomena import (
    _last_value,
    _marker_spans,
    _think_or_body,
    find_aha_examples,
    find_corrections,
    find_reflections,
)


def precision_recall(predicted: list[bool], truth: list[bool]) -> dict[str, float]:
    tp = sum(p and t for p, t in zip(predicted, truth))
    fp = sum(p and not t for p, t in zip(predicted, truth))
    fn = sum(t and not p for p, t in zip(predicted, truth))
    return {"precision": tp / (tp + fp) if tp + fp else float("nan"),
            "recall": tp / (tp + fn) if tp + fn else float("nan"), "tp": tp, "fp": fp, "fn": fn}


def score_answers(rows: list[dict]) -> dict[str, float]:
    """Per-answer precision/recall of find_aha_examples on a labelled set."""
    found = find_aha_examples([r["completion"] for r in rows], [r["correct"] for r in rows], max_examples=len(rows))
    hit = {e["index"] for e in found}
    return precision_recall([i in hit for i in range(len(rows))], [r["aha"] for r in rows])


def score_checks(rows: list[dict]) -> dict[str, float]:
    """Per-check precision/recall of find_corrections' ``changed`` on a labelled set."""
    predicted, truth = [], []
    for r in rows:
        fixes = find_corrections(r["completion"])
        truth += [c["corrected"] for c in r["checks"]]
        if len(fixes) == len(r["checks"]):
            predicted += [f["changed"] for f in fixes]
        else:  # misaligned: every true correction in this answer counts as missed
            predicted += [False] * len(r["checks"])
            predicted += [f["changed"] for f in fixes]
            truth += [False] * len(fixes)
    return precision_recall(predicted, truth)


def previous_rule(rows: list[dict]) -> dict[str, float]:
    """The rule before issue 16, per answer: "after" = last value up to the next marker or the end."""
    predicted = []
    for r in rows:
        reasoning = _think_or_body(r["completion"])
        spans = _marker_spans(reasoning, find_reflections(reasoning))
        hit = False
        for j, (start, end) in enumerate(spans):
            seg_start = spans[j - 1][1] if j > 0 else 0
            seg_end = spans[j + 1][0] if j + 1 < len(spans) else len(reasoning)
            before, after = _last_value(reasoning[seg_start:start]), _last_value(reasoning[end:seg_end])
            if before and after and before[1] != after[1]:
                hit = True
                break
        predicted.append(hit and r["correct"])
    return precision_recall(predicted, [r["aha"] for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.time()
    rows = labelled_aha_set(args.n, seed=args.seed)
    n_aha = sum(r["aha"] for r in rows)
    n_checked = sum(bool(r["checks"]) for r in rows)
    print(f"labelled set: {len(rows)} answers (seed {args.seed}), {n_checked} with a check, {n_aha} true ahas, "
          f"{sum(len(r['checks']) for r in rows)} checks")
    for label, result in (("per answer (find_aha_examples)", score_answers(rows)),
                          ("per check (find_corrections)", score_checks(rows)),
                          ("per answer, the previous rule", previous_rule(rows))):
        print(f"{label:34s} precision {result['precision']:.3f}  recall {result['recall']:.3f}  "
              f"(tp {result['tp']}, fp {result['fp']}, fn {result['fn']})")
    print(f"{time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
