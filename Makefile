# The README's two commands: `make replicate` and `make test`. Both create .venv from requirements.lock
# when it is missing or older than the lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
# The dataset `make replicate`, `make experiments` and `make report` work on: mnist (the paper) or fashion_mnist.
DATASET ?= mnist
PIP := pip==25.3
empty :=
space := $(empty) $(empty)
comma := ,

.PHONY: venv replicate test lint report bench repro experiments systems clean venv-slurm replicate-slurm test-slurm
.PHONY: lock envs check-platforms
.PHONY: venv-bench
.PHONY: docs
.PHONY: readings
.PHONY: study

# A venv from requirements.lock ($(1): its folder), plus a side lock ($(2), optional) in the same resolve, so the
# lock's pins hold (a side lock names none of its packages, tested) and pip check finds no conflict.
define make_venv
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is needed, found " + sys.version'
	rm -rf $(1)
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --quiet --upgrade $(PIP)
	$(1)/bin/python -m pip install --quiet --requirement requirements.lock $(if $(2),--requirement $(2))
	$(if $(2),$(1)/bin/python -m pip check)
	touch $(1)/.installed
endef

$(STAMP): requirements.lock
	$(call make_venv,$(VENV))

venv: $(STAMP)

# .venv plus the Slurm executor plugin (requirements-slurm.lock), for runs on a cluster and `make test-slurm`.
# A venv of its own, so the lock that `make replicate` and `make test` install stays exactly as it is.
SLURM_VENV := .venv-slurm
SLURM_BIN := $(SLURM_VENV)/bin
SLURM_STAMP := $(SLURM_VENV)/.installed

$(SLURM_STAMP): requirements.lock requirements-slurm.lock
	$(call make_venv,$(SLURM_VENV),requirements-slurm.lock)

venv-slurm: $(SLURM_STAMP)

# .venv plus the libraries the seed code trained with (requirements-bench.lock: qiskit-machine-learning, torch,
# PennyLane) and the compiled peers (jax, tensorcircuit-ng), for the trainable-systems part of `make bench` only;
# installed in one resolve with the lock, whose pins hold (the bench lock names none of its packages).
BENCH_VENV := .venv-bench
BENCH_BIN := $(BENCH_VENV)/bin
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): requirements.lock requirements-bench.lock
	$(call make_venv,$(BENCH_VENV),requirements-bench.lock)

venv-bench: $(BENCH_STAMP)

# --show-failed-logs: a failed job's log is printed in the terminal, not only named there.
replicate: venv
	$(BIN)/snakemake --cores $(CORES) --show-failed-logs --config dataset=$(DATASET)

# Two pytest-xdist workers: the shared CI-config run (tests/conftest.py ci_run) on one, the unit tests beside it
# on the other, so the run's idle core does not wait for them; pytest alone runs the same tests in one process.
TEST_WORKERS ?= 2

test: venv
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

lint: venv
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# One self-contained HTML page: the paper-vs-measured table first, then every figure and table with its caption.
report: venv
	$(BIN)/snakemake --report results/$(DATASET)/report.html --config dataset=$(DATASET)

clean:
	git clean -fdX results
	rm -rf .snakemake

# Quantum-stage benchmark (paper loop vs pipeline vs exact limit, scaling) and per-rule costs of the last run
# (in .venv); then training throughput of each trainable system, our engine vs the seed code's routes (in
# .venv-bench: qiskit-machine-learning with parameter shift, PennyLane under torch and JAX, tensorcircuit-ng on
# JAX), with their gradients compared and a typical run's total, compile time included; last, the engine's
# levers one by one (gate by gate vs its plan, graph vs XLA; in .venv).
bench: venv venv-bench
	PYTHONPATH=workflow/scripts $(BIN)/python -m tools.bench
	PYTHONPATH=workflow/scripts $(BENCH_BIN)/python -m tools.bench_systems
	PYTHONPATH=workflow/scripts $(BIN)/python -m tools.bench_engine_levers

# Every results table in README.md and docs/*.md, rewritten between its markers from the results files and their
# provenance, after the runs they cite; refuses, writing nothing, naming each missing or stale file.
# ONLY="headline costs" rewrites only those blocks (names: tools/docs.py BLOCKS); ONLY=headline:systems only the
# block whose spec is `headline systems`.
ONLY ?=
docs: venv
	PYTHONPATH=workflow/scripts $(BIN)/python -m tools.docs $(if $(ONLY),--only $(ONLY))

# Two clean clones of HEAD run config/ci.yaml; every result file must hash the same, and match the golden file.
repro: venv
	PYTHONPATH=workflow/scripts $(BIN)/python -m tools.repro

# Beyond the paper: seeds, shots sweep, device noise and controls on the full data (not in `replicate`).
experiments: venv
	$(BIN)/snakemake --cores $(CORES) --show-failed-logs experiments --config dataset=$(DATASET)

# Can any reasonable reading of what the paper leaves unstated reach its numbers? A covering array of readings
# (config `readings`), each with a classical control; prints the design first; not in `replicate`
# (docs/readings.md). CONFIG=config/ci.yaml runs the CI-sized design (minutes).
readings: venv
	PYTHONPATH=workflow/scripts $(BIN)/python -m tools.readings_design $(if $(CONFIG),--configfile $(CONFIG))
	$(BIN)/snakemake --cores $(CORES) --show-failed-logs readings $(if $(CONFIG),--configfile $(CONFIG)) --config dataset=$(DATASET)

# The full replication on a Slurm cluster, from a login node (docs/cluster.md). The pre-flight check stops
# with a message naming the setting when the plugin is missing or a resource exceeds the partition.
# Overrides go in SLURM_ARGS, e.g. SLURM_ARGS='--set-resources train_autoencoder:mem_mb=8000'; partition and
# account in profiles/slurm/config.yaml (a --default-resources here would replace all of the profile's).
SLURM_ARGS ?=
replicate-slurm: venv-slurm
	$(SLURM_BIN)/python -m tools.slurm_preflight --profile profiles/slurm $(SLURM_ARGS)
	$(SLURM_BIN)/snakemake --profile profiles/slurm $(SLURM_ARGS)

# Not part of `make test`: brings up a one-node Slurm on this machine (Debian/Ubuntu packages, installed if
# missing; needs root), runs config/ci.yaml through it and locally, checks every job went through Slurm and
# the results are byte-identical, checks bad resource requests fail before submission, tears Slurm down.
test-slurm: venv-slurm
	$(SLURM_BIN)/python -m pytest -v -s -m slurm tests/test_slurm.py

# Trainable-circuit systems from the other seed documents: claims vs measured, controls, intervals over seeds
# (not in `replicate`). SYSTEMS="a b" restricts it to those registered systems; CONFIG=config/ci.yaml runs the
# CI-sized values on top of config/config.yaml (minutes, e.g. for a new system: docs/adding-a-system.md).
# The target comes before --configfile, which reads every following word as a config file.
SYSTEMS ?=
CONFIG ?=
systems: venv
	$(BIN)/snakemake --cores $(CORES) --show-failed-logs systems $(if $(CONFIG),--configfile $(CONFIG)) $(if $(SYSTEMS),--config 'systems={run: [$(subst $(space),$(comma) ,$(strip $(SYSTEMS)))]}')

# A fair comparison at equal budget (docs/study.md; not in `replicate` or `systems`): each system's circuit model,
# its variants without entanglement and its classical control, tuned by the same grid with stratified k-fold
# cross-validation on the training images, retrained over the verdicts' seeds and tested once; learning curves.
# Prints its planned jobs and estimated time first. CONFIG=config/ci.yaml runs the CI-sized study.
study: venv
	$(BIN)/snakemake --cores $(CORES) --show-failed-logs study $(if $(CONFIG),--configfile $(CONFIG))

# requirements.lock is the one place for versions; tools/lockfile.py derives the rest from it.
# `make lock`: resolve pyproject's dependencies (+ dev extra) in a fresh venv, keeping today's pins as constraints,
# write the lock (TensorFlow per platform, pins other platforms need) and envs/. To let versions move:
# `make lock LOCK_FLAGS=--upgrade` (everything) or `make lock LOCK_FLAGS="--upgrade numpy scipy"`.
lock: venv
	PYTHONPATH=workflow/scripts $(BIN)/python -m tools.lockfile lock --pip $(PIP) $(LOCK_FLAGS)

# envs/*.yaml (the --sdm conda envs) from the lock: each env's packages and their dependencies, at the lock's pins.
envs: venv
	PYTHONPATH=workflow/scripts $(BIN)/python -m tools.lockfile envs

# Does every lock line have a CPython 3.11 wheel on Linux x86-64, macOS arm64 and Windows x86-64 (and, for
# information, Linux aarch64 and Intel macOS)? Asks PyPI; not part of `make test`.
check-platforms: venv
	PYTHONPATH=workflow/scripts $(BIN)/python -m tools.lockfile check
