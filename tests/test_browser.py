"""A learner's session in a real browser: JupyterLab from the project environment, one notebook, Run All.

nbval runs each notebook's cells through a kernel, but it never sees what a learner sees: which
kernel JupyterLab picks, whether the notebook's outputs render, whether a figure appears. This test
starts JupyterLab with the interpreter that runs the tests (the project's `.venv` under `make
test`), opens `notebooks/02_rewards.ipynb` in headless Chromium, runs every cell from the Run menu
in smoke mode (GRPO_LAB_SMOKE=1, runs written to a temporary directory) and reads the rendered page:
every cell ran, no error output, a figure drawn by this run, and the toolbar names the project's
kernel "Python (grpo-lab)".

Nothing committed is touched: JupyterLab serves a temporary copy of `notebooks/` (the opened
notebook's committed outputs cleared there, so every output the test reads was produced now), with
its own Jupyter config, data, runtime, settings and workspace directories, so neither a user-wide
kernelspec nor a user's JupyterLab settings change the result.

Needs Chromium and its driver (Debian: `apt-get install chromium chromium-driver`; `.ci/run`
installs them) and selenium (the dev extras). Without them the test is skipped, except in CI
(CI=true), where it fails. On failure a screenshot, the page's text and the server log are saved in
a temporary directory whose path is printed and named in the error.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "02_rewards.ipynb"  # short in smoke mode (~20 s of cells) and draws a figure (compare_runs)
KERNEL_NAME = "grpo-lab"
KERNEL_DISPLAY_NAME = "Python (grpo-lab)"
TOTAL_BUDGET_S = 180.0  # the whole test, server start to shutdown
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# An error output: a traceback, or the last line of one (SyntaxError and friends print no "Traceback").
ERROR_TEXT = re.compile(r"Traceback|^\s*\w*(Error|Exception|KeyboardInterrupt)\b", re.MULTILINE)


def _browser_tools() -> tuple[str, str]:
    """Chromium and chromedriver paths, or skip (fail in CI) with the reason they cannot be used."""
    missing = []
    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    if chromium is None:
        missing.append("chromium (Debian: apt-get install chromium)")
    if driver is None:
        missing.append("chromedriver (Debian: apt-get install chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append('selenium (pip install -e ".[dev]")')
    if missing:
        reason = "the real-browser test needs " + ", ".join(missing)
        if IN_CI:
            pytest.fail(reason + "; CI=true, so this is a failure, not a skip (.ci/run installs them)")
        pytest.skip(reason)
    return chromium, driver


class _Deadline:
    """One clock for the whole test, so no single wait can push it past TOTAL_BUDGET_S."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self, cap: float) -> float:
        return max(0.0, min(cap, self.end - time.monotonic()))


def _wait_for(what: str, probe, timeout: float, interval: float = 0.5):
    """Call `probe` until it returns something truthy; raise naming `what` and the last value after `timeout` s."""
    end = time.monotonic() + timeout
    last = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last seen: {last!r})")
        time.sleep(interval)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _copy_notebooks(dst: Path) -> Path:
    """A copy of notebooks/ without run directories; the opened notebook's outputs cleared in the copy."""
    nb_dir = dst / "notebooks"
    shutil.copytree(REPO / "notebooks", nb_dir,
                    ignore=shutil.ignore_patterns("runs", "runs-smoke", "wandb", ".ipynb_checkpoints"))
    path = nb_dir / NOTEBOOK
    committed = path.stat()
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    # Keep the committed modification time, so a paired text file (jupytext) is not seen as out of date.
    os.utime(path, ns=(committed.st_atime_ns, committed.st_mtime_ns))
    return nb_dir


def _isolated_jupyter_env(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Jupyter and JupyterLab directories under tmp, smoke mode, runs in tmp; applied here and returned for the server."""
    settings = tmp / "lab-settings"
    # Never ask about (or fetch) Jupyter news: no network, no toast over the page.
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    values = {
        "JUPYTER_CONFIG_DIR": tmp / "jupyter-config", "JUPYTER_DATA_DIR": tmp / "jupyter-data",
        "JUPYTER_RUNTIME_DIR": tmp / "jupyter-runtime", "JUPYTERLAB_SETTINGS_DIR": settings,
        "JUPYTERLAB_WORKSPACES_DIR": tmp / "lab-workspaces", "IPYTHONDIR": tmp / "ipython",
        "GRPO_LAB_RUNS": tmp / "runs", "WANDB_DIR": tmp / "wandb",
    }
    for key, value in values.items():
        Path(value).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(key, str(value))
    for key, value in {"GRPO_LAB_SMOKE": "1", "WANDB_MODE": "disabled", "WANDB_SILENT": "true", "TQDM_DISABLE": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the notebook's own %matplotlib inline decides, as for a learner
    return dict(os.environ)


def _check_project_kernelspec() -> None:
    """The kernelspec JupyterLab will find is the one `make setup` put in this environment, for this interpreter."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        pytest.fail(f"no kernelspec {KERNEL_NAME!r} in this environment ({sys.prefix}/share/jupyter/kernels): "
                    "`make setup` installs it (ipykernel install --sys-prefix)")
    assert Path(spec.resource_dir).resolve().is_relative_to(Path(sys.prefix).resolve()), (
        f"kernelspec {KERNEL_NAME!r} comes from {spec.resource_dir}, not from this environment ({sys.prefix})")
    assert Path(spec.argv[0]).resolve() == Path(sys.executable).resolve(), (
        f"kernelspec {KERNEL_NAME!r} at {spec.resource_dir} starts {spec.argv[0]}, not this interpreter ({sys.executable})")
    assert spec.display_name == KERNEL_DISPLAY_NAME, f"kernelspec display name {spec.display_name!r}"


def _start_lab(nb_dir: Path, port: int, token: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={nb_dir}", "--ServerApp.allow_root=True",  # CI runs as root
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, cwd=nb_dir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _server_ready(url: str, token: str, server: subprocess.Popen, log: Path):
    if server.poll() is not None:
        raise AssertionError(f"JupyterLab exited with code {server.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"}),
                                    timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _descendants(pid: int) -> list:
    import psutil  # ipykernel's dependency, so always present where JupyterLab is

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _alive(process) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _stop(process: subprocess.Popen | None, children: list) -> None:
    """Stop a process we started (SIGTERM, then SIGKILL), then any of its descendants still alive, by pid."""
    import psutil

    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=5)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


# JavaScript read-outs of the page: the state a learner sees on screen.
JS_STATE = """
const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
if (!panel) { return null; }
const dialog = document.querySelector('.jp-Dialog');
const kernel = panel.querySelector('.jp-Toolbar-kernelName');
const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
return {
  dialog: dialog ? dialog.textContent : null,
  kernel: kernel ? kernel.textContent.trim() : null,
  status: indicator ? indicator.getAttribute('data-status') : null,
  dirty: document.querySelectorAll('.lm-TabBar-tab.jp-mod-dirty').length,
  prompts: Array.from(panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')).map(p => p.textContent.trim()),
};
"""
JS_OUTPUTS = """
const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
return {
  stderr: Array.from(panel.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
              .map(e => e.textContent),
  images: panel.querySelectorAll('.jp-OutputArea-output img').length,
  outputs: panel.querySelectorAll('.jp-OutputArea-output').length,
};
"""


def _save_evidence(driver, server_log: Path) -> Path:
    """Screenshot, page text and server log in a fresh temporary directory; its path is printed and returned."""
    evidence = Path(tempfile.mkdtemp(prefix="grpo-lab-browser-failure-"))
    if server_log.exists():
        shutil.copy(server_log, evidence / "jupyterlab.log")
    if driver is not None:
        try:
            driver.save_screenshot(str(evidence / "screenshot.png"))
            (evidence / "page.txt").write_text(driver.execute_script("return document.body.innerText"), encoding="utf-8")
        except Exception as e:  # the browser may be the thing that failed
            (evidence / "browser-error.txt").write_text(repr(e), encoding="utf-8")
    print(f"\nbrowser test evidence (screenshot, page text, server log): {evidence}", flush=True)
    return evidence


@pytest.mark.slow
def test_notebook_runs_all_in_jupyterlab_in_a_real_browser(tmp_path, monkeypatch):
    chromium, chromedriver = _browser_tools()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    deadline = _Deadline(TOTAL_BUDGET_S)
    env = _isolated_jupyter_env(tmp_path, monkeypatch)
    _check_project_kernelspec()
    nb_dir = _copy_notebooks(tmp_path)
    port, token = _free_port(), secrets.token_hex(16)
    url, server_log = f"http://127.0.0.1:{port}", tmp_path / "jupyterlab.log"

    server = driver = service = None
    failed = True
    try:
        server = _start_lab(nb_dir, port, token, env, server_log)
        _wait_for("JupyterLab to answer on " + url, lambda: _server_ready(url, token, server, server_log), deadline.left(60))

        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                    "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
            options.add_argument(arg)
        service = Service(executable_path=chromedriver, log_output=str(tmp_path / "chromedriver.log"))
        driver = webdriver.Chrome(service=service, options=options)
        driver.set_page_load_timeout(deadline.left(60))
        driver.get(f"{url}/lab/tree/{NOTEBOOK}?token={token}")

        # The notebook is open, its kernel started and idle, and no dialog (e.g. "Select Kernel") is in the way.
        def kernel_ready():
            state = driver.execute_script(JS_STATE)
            if state and state["dialog"]:
                raise AssertionError(f"JupyterLab shows a dialog instead of the notebook: {state['dialog']!r}")
            started = state and state["kernel"] not in (None, "", "No Kernel")  # "No Kernel" until the session starts
            return state if started and state["status"] == "idle" else None

        state = _wait_for("the notebook to open with an idle kernel", kernel_ready, deadline.left(90))
        assert state["kernel"] == KERNEL_DISPLAY_NAME, f"toolbar kernel {state['kernel']!r}, expected {KERNEL_DISPLAY_NAME!r}"
        # Opening a notebook must not mark it modified (JupyterLab's dot on the tab): its metadata already
        # holds what the kernel reports. A moment later, as the kernel's info reply may land after idle.
        time.sleep(2)
        assert driver.execute_script(JS_STATE)["dirty"] == 0, "the notebook shows as modified right after opening"
        n_cells = len(state["prompts"])
        assert n_cells > 0 and not any(re.fullmatch(r"\[\d+\]:", p) for p in state["prompts"]), state["prompts"]

        # Run > Run All Cells, clicked as a learner would.
        run_menu = [e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item") if e.text.strip() == "Run"]
        assert run_menu, "no Run menu in JupyterLab's menu bar"
        run_menu[0].click()

        def run_all_item():
            return [e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-item")
                    if e.text.split("\n")[0].strip() == "Run All Cells"]

        _wait_for("'Run All Cells' in the Run menu", run_all_item, deadline.left(15))[0].click()

        # Done when every code cell shows an execution count and the kernel is idle. Run All stops at an
        # error, leaving later cells unrun: an idle kernel, no queued cell ([*]) and an error output end the wait.
        def all_ran():
            s = driver.execute_script(JS_STATE)
            if s["dialog"]:
                raise AssertionError(f"a dialog appeared while running: {s['dialog']!r}")
            if s["status"] != "idle" or "[*]:" in s["prompts"]:
                return False
            errors = [t for t in driver.execute_script(JS_OUTPUTS)["stderr"] if ERROR_TEXT.search(t)]
            assert not errors, f"Run All stopped at an error (prompts {s['prompts']}):\n" + "\n---\n".join(t[-2000:] for t in errors)
            return all(re.fullmatch(r"\[\d+\]:", p) for p in s["prompts"])

        _wait_for("every cell to run", all_ran, deadline.left(150), interval=1.0)
        time.sleep(1.0)
        state = driver.execute_script(JS_STATE)
        assert state["status"] == "idle" and all(re.fullmatch(r"\[\d+\]:", p) for p in state["prompts"]), state
        counts = [int(p[1:-2]) for p in state["prompts"]]
        assert counts == list(range(1, n_cells + 1)), f"cells ran out of order or more than once: {state['prompts']}"

        out = driver.execute_script(JS_OUTPUTS)
        errors = [text for text in out["stderr"] if ERROR_TEXT.search(text)]
        assert not errors, "error output in the notebook:\n" + "\n---\n".join(t[-2000:] for t in errors)
        assert out["images"] >= 1, f"no figure (<img>) in any of the {out['outputs']} outputs"
        assert state["kernel"] == KERNEL_DISPLAY_NAME, f"toolbar kernel {state['kernel']!r} after the run"
        failed = False
    except BaseException as error:
        evidence = _save_evidence(driver, server_log)
        if hasattr(error, "add_note"):  # Python 3.11+
            error.add_note(f"browser test evidence: {evidence}")
        raise
    finally:
        # Everything started here is stopped here, by pid: Chromium (under chromedriver), then JupyterLab
        # and its kernel (which runs in a session of its own, so it is collected before the server stops).
        driver_process = getattr(service, "process", None)
        driver_children = _descendants(driver_process.pid) if driver_process is not None else []
        server_children = _descendants(server.pid) if server is not None else []
        if driver is not None:
            try:
                driver.quit()
            except Exception:
                pass
        _stop(None, driver_children)
        _stop(server, server_children)
        leftover = [p.pid for p in driver_children + server_children if _alive(p)]
        if not failed:
            assert not leftover, f"processes still running after the test: {leftover}"
