# The README's two commands: `make replicate` and `make test`. Both create .venv from requirements.lock
# when it is missing or older than the lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
empty :=
space := $(empty) $(empty)
comma := ,

.PHONY: venv replicate test lint report bench repro experiments systems clean

$(STAMP): requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is needed, found " + sys.version'
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet --requirement requirements.lock
	touch $(STAMP)

venv: $(STAMP)

replicate: venv
	$(BIN)/snakemake --cores $(CORES)

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow

report: venv
	$(BIN)/snakemake --report results/report.html

clean:
	git clean -fdX results
	rm -rf .snakemake

# Quantum-stage benchmark (paper loop vs pipeline vs exact limit, scaling) and per-rule costs of the last run.
bench: venv
	PYTHONPATH=workflow/scripts $(BIN)/python -m tools.bench

# Two clean clones of HEAD run config/ci.yaml; every result file must hash the same, and match the golden file.
repro: venv
	PYTHONPATH=workflow/scripts $(BIN)/python -m tools.repro

# Beyond the paper: seeds, shots sweep, device noise and controls on the full data (not in `replicate`).
experiments: venv
	$(BIN)/snakemake --cores $(CORES) experiments

# Trainable-circuit systems from the other seed documents: claims vs measured, controls, intervals over seeds
# (not in `replicate`). SYSTEMS="a b" restricts it to those registered systems.
SYSTEMS ?=
systems: venv
	$(BIN)/snakemake --cores $(CORES) systems $(if $(SYSTEMS),--config 'systems={run: [$(subst $(space),$(comma) ,$(strip $(SYSTEMS)))]}')
