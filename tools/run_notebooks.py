"""Execute the notebooks in full mode, in place, so the committed copies carry real outputs.

    .venv/bin/python tools/run_notebooks.py            # every notebook, in dependency order
    .venv/bin/python tools/run_notebooks.py 01 03 09   # some of them (by number or file name)

Order: notebooks that need no RL run first; then 04, whose run (the demo recipe, seed 0) is loaded
by 00, 05 and 06 from notebooks/runs/; then the notebooks with their own runs. Each notebook's
wall time is printed. Outputs are cleaned for committing: no progress bars, no absolute paths
(the repository root is written as "."), no per-cell timing metadata, and the metadata normalised
as tools/sync_notebooks.py does (the project's kernel, so JupyterLab opens it unmodified); a
notebook over 2 MB or with a machine path left in it is reported as an error. The notebooks run on
this interpreter (the "python3" kernel of the environment running this script).

Runs already in notebooks/runs/ are loaded, not retrained (grpo_lab.notebook.run_or_load).
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync_notebooks import normalise  # noqa: E402  (a sibling script, not a package)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
ORDER = ["01", "03", "09", "04", "00", "05", "06", "02", "07", "08"]
MAX_BYTES = 2_000_000

os.environ.setdefault("WANDB_MODE", "offline")  # the notebooks' runs are logged; `wandb sync` them later
os.environ["WANDB_SILENT"] = "true"
os.environ["TQDM_DISABLE"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.pop("GRPO_LAB_SMOKE", None)
os.environ.pop("GRPO_LAB_RUNS", None)
os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend draws the figures

PROGRESS = re.compile(r"\r|\d+it/s\]|s/it\]|\|[█▏▎▍▌▋▊▉ ]+\|")


def machine_paths() -> list[str]:
    paths = {str(ROOT), str(Path.home()), str(Path(sys.prefix))}
    return sorted((p for p in paths if len(p) > 1), key=len, reverse=True)


def clean(nb) -> None:
    """Drop progress-bar output and timing metadata; write the repository root as '.'."""
    paths = machine_paths()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr" and PROGRESS.search(out.get("text", "")):
                continue
            for key in ("text", "data"):
                if key not in out:
                    continue
                if key == "text":
                    out["text"] = scrub(out["text"], paths)
                else:
                    for mime in ("text/plain", "text/html", "text/markdown"):
                        if mime in out["data"]:
                            out["data"][mime] = scrub(out["data"][mime], paths)
            kept.append(out)
        cell.outputs = kept


def scrub(text, paths):
    if isinstance(text, list):
        text = "".join(text)
    for p in paths:
        text = text.replace(p, ".")
    return text


def check(path: Path) -> list[str]:
    """Size and machine paths (in sources and text outputs; images are base64 and skipped)."""
    problems = []
    if path.stat().st_size > MAX_BYTES:
        problems.append(f"{path.name} is {path.stat().st_size / 1e6:.1f} MB (limit 2 MB)")
    nb = nbformat.read(path, as_version=4)
    texts = []
    for cell in nb.cells:
        texts.append(cell.source)
        for out in cell.get("outputs", []):
            texts.append(str(out.get("text", "")))
            texts += [str(v) for k, v in out.get("data", {}).items() if not k.startswith("image/")]
    raw = "\n".join(texts)
    for p in machine_paths():
        if p in raw:
            problems.append(f"{path.name} contains the machine path {p}")
    return problems


def select(args: list[str]) -> list[Path]:
    found = {p.name[:2]: p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))}
    wanted = [a[:2] for a in args] or ORDER
    unknown = [w for w in wanted if w not in found]
    if unknown:
        raise SystemExit(f"no notebook numbered {unknown}; have {sorted(found)}")
    return [found[n] for n in sorted(wanted, key=lambda n: ORDER.index(n) if n in ORDER else 99)]


def main(args: list[str]) -> int:
    problems, total = [], 0.0
    for path in select(args):
        nb = nbformat.read(path, as_version=4)
        t = time.time()
        client = NotebookClient(nb, timeout=3 * 3600, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(NOTEBOOKS)}})
        client.execute()
        seconds = time.time() - t
        total += seconds
        clean(nb)
        normalise(nb)
        nbformat.write(nb, path)
        problems += check(path)
        print(f"{path.name}: {seconds:.0f} s, {path.stat().st_size / 1e3:.0f} kB", flush=True)
    print(f"total: {total:.0f} s")
    for p in problems:
        print("ERROR:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
