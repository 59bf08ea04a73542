"""Bring each notebooks/NN_name.ipynb in line with its NN_name.py source, keeping the outputs.

    .venv/bin/python tools/sync_notebooks.py           # every pair
    .venv/bin/python tools/sync_notebooks.py 00 04     # some (by number or file name)

The .py files (jupytext percent format) are the source: edit them in any editor, or edit the
notebook in JupyterLab with jupytext installed, which writes both. This script does what a
shell `jupytext --to ipynb --update` does (new sources, outputs of unchanged cells kept), then
normalises the metadata so JupyterLab opens the notebook without rewriting it (see `normalise`).
Outputs of a changed cell stay until the notebook is re-executed (tools/run_notebooks.py).
tests/test_notebook_pairs.py fails when a pair is out of sync or a notebook is not normalised.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
KERNELSPEC = {"name": "grpo-lab", "display_name": "Python (grpo-lab)", "language": "python"}
"""The project's kernel: `make setup` installs it from the project's .venv."""


def normalise(nb) -> None:
    """Metadata JupyterLab keeps as it is: the project's kernel, current nbformat, ids, nothing stale.

    Dropped: jupytext's own metadata (pairing is configured in jupytext.toml), saved widget state,
    and per-cell execution timing; each cell gets an id (nbformat 4.5), so opening a notebook does
    not upgrade it and mark it modified.
    """
    nb.nbformat, nb.nbformat_minor = nbformat.current_nbformat, nbformat.current_nbformat_minor
    nb.metadata.pop("jupytext", None)
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.validator.normalize(nb)
    for cell in nb.cells:  # ids for cells that have none (nbformat < 4.5 or a fresh jupytext cell)
        if "id" not in cell:
            cell["id"] = nbformat.v4.new_code_cell().id


def sync(ipynb: Path) -> None:
    """Write ipynb from its .py twin, keeping outputs of cells whose source did not change.

    The .py is written back in jupytext's own layout (and with the project's kernel in its
    header), so that JupyterLab's jupytext, saving the pair, rewrites neither file.
    """
    py = ipynb.with_suffix(".py")
    source = jupytext.read(py)
    current = nbformat.read(ipynb, as_version=4) if ipynb.exists() else None
    if current is not None:
        from jupytext.combine import combine_inputs_with_outputs

        source = combine_inputs_with_outputs(source, current, fmt="py:percent")
    normalise(source)
    nbformat.write(source, ipynb)
    jupytext.write(source, py, fmt="py:percent")


def select(args: list[str]) -> list[Path]:
    found = {p.name[:2]: p.with_suffix(".ipynb") for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))}
    wanted = [a[:2] for a in args] or sorted(found)
    unknown = [w for w in wanted if w not in found]
    if unknown:
        raise SystemExit(f"no notebook source numbered {unknown}; have {sorted(found)}")
    return [found[n] for n in wanted]


if __name__ == "__main__":
    for path in select(sys.argv[1:]):
        sync(path)
        print(f"{path.name}: synced")
