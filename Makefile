# gprl: two commands on a fresh machine: `make run` (environment + embedded default) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install install-eval run test test-slow test-cluster cluster-up cluster-down bench bench-default clean policy policy-experiments reproduce-world reproduce-world-v1 reproduce-table1 reproduce-table2 reproduce-table3 reproduce-table4 reproduce-table5 reproduce-table6 reproduce-table7 reproduce-table8 reproduce-table9 reproduce-table10 reproduce-table11 reproduce-gprl

# CPU torch is pinned (2.13.0 installs a CPU build from local disk; an unpinned torch pulls a CUDA build).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test,eval,dashboard]"
	touch $(STAMP)

# one command: gprl, its tests and the evaluator packages (alpaca-eval 0.6.6 needs setuptools<81 to import, pinned
# in the eval extra)
install: $(STAMP)
install-eval: $(STAMP)

# the embedded default: GPM (k=4, gate, L2) on MiniLM, trained on balanced AlpacaEval pairs, evaluated offline
run: $(STAMP)
	$(PY) run.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# a one-node SLURM cluster on this machine (root; installs slurm-wlm and munge with apt if missing): see README "Cluster"
cluster-up:
	slurm/local_cluster.sh up
cluster-down:
	slurm/local_cluster.sh down

# the cluster tests (sweeps, tables, requeue) against the local cluster, which it starts; skipped with a message where
# this machine cannot start one (not root, or neither SLURM nor apt-get)
test-cluster: $(STAMP)
	@if [ "$$(id -u)" -ne 0 ]; then echo "test-cluster: SKIPPED, not root (the local SLURM cluster needs root)"; \
	elif ! command -v slurmctld >/dev/null && ! command -v apt-get >/dev/null; then \
	  echo "test-cluster: SKIPPED, SLURM is not installed and there is no apt-get to install it"; \
	else slurm/local_cluster.sh up && $(PY) -m pytest -q -p no:cacheprovider -m cluster; fi

bench: $(STAMP)
	$(PY) benchmarks/scoring_cost.py
	$(PY) benchmarks/eval_speed.py
	$(PY) benchmarks/rm_throughput.py
	$(PY) benchmarks/gprl_step.py

# the embedded default from scratch, twice: min/median wall time and peak memory (run it on an idle machine)
bench-default: $(STAMP)
	$(PY) benchmarks/default_run.py $(ARGS)

clean:
	rm -rf outputs multirun wandb

# the laptop policy (tiny-sft:256x6): SFT once, about 18 min on 2 cores, cached in .cache/gprl (also built on
# first use by any policy experiment)
policy: $(STAMP)
	$(PY) -m gprl.models.sft

# the six policy experiments on the laptop policy, each ending with its held-out evaluation table
POLICY_EXPERIMENTS = alpaca_gprl alpaca_grpo alpaca_gpo alpaca_sppo alpaca_dpo alpaca_simpo
policy-experiments: policy
	for e in $(POLICY_EXPERIMENTS); do $(PY) run.py +experiment=$$e $(ARGS) || exit 1; done

# Paper tables: SCALE=offline (default; writes results/tableN.{csv,md}), smoke (minutes; writes
# outputs/tables-smoke/), or a cluster scale named in the manifest (add LAUNCHER=slurm).
SCALE ?= offline
LAUNCHER ?=
TABLE_RESULTS = $(if $(filter offline,$(SCALE)),results,outputs/tables-smoke)
reproduce-table1 reproduce-table2 reproduce-table3 reproduce-table4 reproduce-table5 reproduce-table6 reproduce-table7 reproduce-table8 reproduce-table9 reproduce-table10 reproduce-table11: reproduce-table%: $(STAMP)
	$(PY) -m gprl.tables run experiments/table$*.yaml --scale $(SCALE) --results $(TABLE_RESULTS) $(if $(LAUNCHER),--launcher $(LAUNCHER))
# GPRL's headline comparison (experiments/gprl_main.yaml): GPRL vs SimPO, SPPO, DPO, GRPO on four policy benchmarks
reproduce-gprl: $(STAMP)
	$(PY) -m gprl.tables run experiments/gprl_main.yaml --scale $(SCALE) --results $(TABLE_RESULTS) $(if $(LAUNCHER),--launcher $(LAUNCHER))

# the preference world (gprl/world, docs/world.md): every algorithm against a gold oracle. Version 2 (the default):
# SCALE=full writes results/world/v2/ in two worker processes (finished runs are reused); SCALE=smoke runs the same
# in minutes into outputs/world-v2-smoke/. Version 1 (results/world/v1/): make reproduce-world-v1.
WORLD_SCALE = $(if $(filter offline,$(SCALE)),full,$(SCALE))
reproduce-world: $(STAMP)
	$(PY) -m gprl.world.v2 --scale $(WORLD_SCALE) --workers 2
reproduce-world-v1: $(STAMP)
	$(PY) -m gprl.world.experiment --scale $(WORLD_SCALE)
