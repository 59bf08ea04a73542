"""Execute notebooks in place (full mode) so the committed copies carry real outputs."""
import os, sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient

os.environ.setdefault("WANDB_MODE", "offline")
os.environ["WANDB_SILENT"] = "true"
os.environ.pop("GRPO_LAB_SMOKE", None)
for name in sys.argv[1:]:
    path = Path("notebooks") / name
    nb = nbformat.read(path, as_version=4)
    t = time.time()
    NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": "notebooks"}}).execute()
    nbformat.write(nb, path)
    print(f"{name}: {time.time() - t:.0f} s, {path.stat().st_size / 1e3:.0f} kB", flush=True)
