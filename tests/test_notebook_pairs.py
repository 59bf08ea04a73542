"""Each notebook is a jupytext pair: notebooks/NN_name.py (the source) and NN_name.ipynb (with outputs).

A pair out of sync means a learner runs code nobody reviewed, or the reviewed code's outputs were
never produced. These tests read both files as committed; `jupytext --sync notebooks/NN_name.ipynb`
repairs a pair (the newer file wins). They also check the metadata that decides how JupyterLab
opens a notebook: the project's kernel, a current nbformat (so opening does not upgrade and mark
it modified), cell ids, and no saved widget state.
"""

from __future__ import annotations

import json
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
IPYNBS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
KERNELSPEC = {"name": "grpo-lab", "display_name": "Python (grpo-lab)", "language": "python"}


def cells_of(notebook) -> list[tuple[str, str]]:
    """What a pair must agree on: each cell's type and source (outputs live only in the .ipynb)."""
    return [(cell.cell_type, cell.source.rstrip()) for cell in notebook.cells]


def pair_differences(ipynb: Path) -> list[str]:
    """Human-readable differences between a notebook and its .py twin ([] when in sync)."""
    py = ipynb.with_suffix(".py")
    if not py.exists():
        return [f"{py.name} is missing"]
    left, right = cells_of(nbformat.read(ipynb, as_version=4)), cells_of(jupytext.read(py))
    problems = [f"{ipynb.name} has {len(left)} cells, {py.name} has {len(right)}"] if len(left) != len(right) else []
    for i, (a, b) in enumerate(zip(left, right)):
        if a != b:
            problems.append(f"cell {i} differs: {ipynb.name} starts {a[1][:60]!r}, {py.name} starts {b[1][:60]!r}")
    return problems


def test_there_are_notebooks_to_check():
    assert len(IPYNBS) >= 10


@pytest.mark.parametrize("ipynb", IPYNBS, ids=lambda p: p.stem)
def test_notebook_and_its_py_source_have_the_same_cells(ipynb):
    assert pair_differences(ipynb) == [], f"run `jupytext --sync {ipynb.relative_to(NOTEBOOKS.parent)}`"


def test_a_pair_out_of_sync_is_reported(tmp_path):
    source = IPYNBS[0]
    copy = tmp_path / source.name
    copy.write_text(source.read_text())
    text = source.with_suffix(".py").read_text()
    edited = text.replace("# %% [markdown]\n", "# %% [markdown]\n# An edit made only in the .py file.\n#\n", 1)
    assert edited != text
    copy.with_suffix(".py").write_text(edited)
    assert any("cell 0 differs" in p for p in pair_differences(copy))
    copy.with_suffix(".py").unlink()
    assert pair_differences(copy) == [f"{copy.with_suffix('.py').name} is missing"]


@pytest.mark.parametrize("ipynb", IPYNBS, ids=lambda p: p.stem)
def test_notebook_opens_on_the_project_kernel_without_being_rewritten(ipynb):
    raw = json.loads(ipynb.read_text())
    assert raw["metadata"].get("kernelspec") == KERNELSPEC
    assert (raw["nbformat"], raw["nbformat_minor"]) == (nbformat.current_nbformat, nbformat.current_nbformat_minor)
    assert all("id" in cell for cell in raw["cells"]), "cells without ids are rewritten when opened"
    assert "widgets" not in raw["metadata"], "saved widget state goes stale and is rewritten when opened"
    assert "jupytext" not in raw["metadata"], "pairing is configured in jupytext.toml, not per notebook"
    nbformat.validate(nbformat.reads(ipynb.read_text(), as_version=4))


@pytest.mark.parametrize("ipynb", IPYNBS, ids=lambda p: p.stem)
def test_the_first_code_cell_installs_nothing_unless_asked(ipynb):
    first = next(c for c in nbformat.read(ipynb, as_version=4).cells if c.cell_type == "code")
    assert "from grpo_lab.notebook import setup_notebook" in first.source
    assert "INSTALL = False" in first.source, "a foreign interpreter is changed only when the learner says so"


@pytest.mark.parametrize("ipynb", IPYNBS, ids=lambda p: p.stem)
def test_py_source_is_in_jupytext_layout_with_the_project_kernel(ipynb):
    text = ipynb.with_suffix(".py").read_text()
    notebook = jupytext.reads(text, fmt="py:percent")
    assert notebook.metadata.get("kernelspec") == KERNELSPEC
    assert jupytext.writes(notebook, fmt="py:percent") == text, "run `python tools/sync_notebooks.py` to re-lay it out"


def test_opening_and_saving_in_jupyterlab_rewrites_no_file(tmp_path):
    """JupyterLab with jupytext (the dev extra) reads and writes both files of a pair on save."""
    import asyncio
    import shutil

    from jupytext.async_contentsmanager import AsyncTextFileContentsManager

    shutil.copy(NOTEBOOKS.parent / "jupytext.toml", tmp_path)
    (tmp_path / "notebooks").mkdir()
    for ipynb in IPYNBS:
        for path in (ipynb, ipynb.with_suffix(".py")):
            shutil.copy(path, tmp_path / "notebooks" / path.name)
    manager = AsyncTextFileContentsManager(root_dir=str(tmp_path))

    async def open_and_save(name: str) -> None:
        model = await manager.get(name)
        await manager.save({"type": "notebook", "format": "json", "content": model["content"]}, name)

    for ipynb in IPYNBS:
        name = f"notebooks/{ipynb.name}"
        asyncio.run(open_and_save(name))
        for path in (ipynb, ipynb.with_suffix(".py")):
            assert (tmp_path / "notebooks" / path.name).read_text() == path.read_text(), f"saving {name} rewrote {path.name}"
