"""The committed notebooks state only what their own outputs show (issues 15 and 16).

These read the executed notebooks as committed (tools/run_notebooks.py writes their outputs), so
they check the figures a learner sees, not a re-run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _cells(name: str) -> list[dict]:
    return json.loads((NOTEBOOKS / name).read_text())["cells"]


def _outputs(cell: dict) -> str:
    texts = []
    for out in cell.get("outputs", []):
        text = out.get("text") or out.get("data", {}).get("text/plain", "")
        texts.append("".join(text) if isinstance(text, list) else text)
    return "\n".join(texts)


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_notebook_07_runs_every_arm_on_two_seeds_and_labels_it_by_its_loss_type():
    [cell] = [c for c in _cells("07_ablations.ipynb") if "per_seed = pd.DataFrame" in _source(c)]
    lines = re.findall(r"^(.+): seeds \[(.*)\], loss_type \['(\w+)'\]$", _outputs(cell), flags=re.M)
    assert len(lines) >= 7, "the committed notebook 07 has not been executed in full mode"
    for arm, seeds, loss_type in lines:
        assert len(seeds.split(",")) >= 2, f"{arm}: one seed cannot tell an effect from luck"
        assert arm.startswith(loss_type), f"{arm!r} is labelled as another loss than its {loss_type}"


def test_notebook_07_compares_arms_against_a_measured_seed_band():
    [cell] = [c for c in _cells("07_ablations.ipynb") if "band = gap.max()" in _source(c)]
    assert "seed band" in _outputs(cell) and "pass@1 late" in _outputs(cell)


def test_notebook_06_tests_reflection_causally_and_does_not_claim_it_untested():
    cells = _cells("06_aha_moments.ipynb")
    outputs = "\n".join(_outputs(c) for c in cells)
    assert re.search(r"share of the gain that depends on checking: +-?\d+%", outputs)
    prose = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    assert "real aha completions" not in prose.lower()
    assert "reflection is how the policy got more accurate" not in prose.lower()


# ------------------------------------------------------------------------------------------------
# Every figure a notebook's text quotes is in its outputs (issue 15).
#
# A "figure" is a decimal with two or more places (0.635, +0.48) or a percentage (56%): the way a
# measured number is quoted. Integers and one-place decimals are mostly parameters and counts, and
# are not checked. A quoted figure passes when some number in the notebook's outputs rounds to it at
# the precision quoted (0.6354 -> 0.635 or 64%), or the figure appears in the outputs as written.
# What the text cites from elsewhere (a paper, a config value, docs/) is listed here with where it
# comes from; anything else must be measured by the notebook itself.
QUOTED = re.compile(r"(?<![\w.\-/])[-+−]?\d+\.\d{2,}(?![\d.]*\d)|(?<![\w.])\d+(?:\.\d+)?%")
NUMBER = re.compile(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?|[-+]?\d+")
CITED = {
    "00_quickstart": {"15.6%", "71.0%",  # DeepSeek-R1's AIME 2024 pass@1, before and after RL
                      "0.05",  # seed-to-seed spread of pass@1, docs/micro_world.md
                      "0.681"},  # seed 0's final pass@1 with torch's AVX2 kernels, docs/benchmarks.md (issue 18)
    "01_base_model_and_template": {"0.95"},  # the exam's top-p
    "04_r1_zero_training": {"0.04"},  # the recipe's β
    "05_pass_at_1_eval": {"0.95"},  # the exam's top-p
    "08_r1_pipeline": {"0.15"},  # the corpus's chance of checking a chunk, docs/micro_world.md
    "09_one_gpu_real_model": {"0.95",  # the exam's top-p
                              "5%",  # a significance level
                              "0.26", "0.12", "1.7%", "0.342"},  # docs/real_model.md's analysis of these runs
    "06_aha_moments": {"0.95",  # the exam's top-p
                       "1.00", "0.73",  # detector precision/recall, benchmarks/aha_precision.py
                       "15%",  # share of chunks the corpus checks, docs/micro_world.md
                       "95%"},  # the confidence level of the intervals
}


def quoted_figures(cells: list[dict]) -> set[str]:
    return set(QUOTED.findall("\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")))


def figure_is_shown(figure: str, outputs: str, numbers: list[float]) -> bool:
    figure = figure.replace("−", "-")
    if figure in outputs:
        return True
    percent = figure.endswith("%")
    text = figure.rstrip("%").lstrip("+")
    places = len(text.split(".")[1]) if "." in text else 0
    value, scale = float(text), 100 if percent else 1
    half_ulp = 0.5 * 10 ** -places + 1e-9
    return any(abs(x * scale - value) <= half_ulp for x in numbers)


def test_quoted_figure_check_accepts_roundings_and_rejects_other_numbers():
    numbers = [0.63541, 0.5625, 12.0]
    assert figure_is_shown("0.635", "", numbers) and figure_is_shown("64%", "", numbers)
    assert figure_is_shown("56%", "", numbers) and figure_is_shown("+0.56", "", numbers)
    assert not figure_is_shown("0.700", "", numbers) and not figure_is_shown("0.64", "", [0.6451, 0.6349])
    assert figure_is_shown("−0.577", "advantages: [1.155, -0.577]", [])


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_every_figure_the_text_quotes_is_in_the_outputs(path):
    cells = _cells(path.name)
    outputs = "\n".join(_outputs(c) for c in cells)
    numbers = [float(x) for x in NUMBER.findall(outputs)]
    cited = CITED.get(path.stem, set())
    missing = sorted(f for f in quoted_figures(cells) - cited if not figure_is_shown(f, outputs, numbers))
    assert not missing, f"{path.name} quotes {missing}, which none of its outputs shows"
