# trustlab: one target per report section, on top of real result-file targets.
# The sections' rules are generated from experiments/ (see below); `make help` lists targets and variables.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --warn-undefined-variables
# Every file target is kept: metrics.json of a section is a result, not an intermediate file.
.SECONDARY:

PROFILE ?= paper
DATA_ROOT ?= data
CACHE_DIR ?= data/cache
SEED ?= 0
PRETRAINED ?= 1
WEIGHTS ?=
DOWNLOAD ?= 1
WANDB ?= 1
COMPILE ?= 0
PRECISION ?=
CHANNELS_LAST ?=
EXTRA ?=
RESULTS ?= results
VENV ?= .venv
PYTHON ?= $(VENV)/bin/python

SEEDS ?=
SOURCE ?=
AUDIT_POINTS ?=
PUBLISH ?=
TARGETS ?=
R := $(RESULTS)/$(PROFILE)
# A second `make` of a target another one is writing waits for it (up to LOCK_WAIT seconds), then finds the
# file done and leaves it alone: .DELETE_ON_ERROR never deletes a file another process wrote.
LOCK_WAIT ?= 86400
export TRUSTLAB_LOCK_WAIT := $(LOCK_WAIT)
# Scale-out. GPUS="0 1 2 3" runs each command on the first free GPU slot (trainers/gpu_slot.py), at most
# JOBS_PER_GPU commands on one GPU at a time; `make -j` beyond the slots queues.
# LAUNCHER=slurm submits each section as a SLURM job through submitit (LAUNCHER=local: submitit's local executor).
GPUS ?=
JOBS_PER_GPU ?= 1
LAUNCHER ?=
PARTITION ?=
GPUS_PER_JOB ?= 1
TIME ?= 240
LAUNCH = $(if $(LAUNCHER),$(PYTHON) -m trainers.launcher --executor $(LAUNCHER) --gpus $(GPUS_PER_JOB) --time $(TIME) --logs $(RESULTS)/slurm \
	$(if $(PARTITION),--partition $(PARTITION)) --)
# Build the virtual environment only when the default interpreter is in use.
VENV_STAMP := $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(VENV)/.installed)

COMPUTE_FLAGS = $(if $(PRECISION),--precision $(PRECISION)) \
	$(if $(filter 1,$(CHANNELS_LAST)),--channels-last,$(if $(filter 0,$(CHANNELS_LAST)),--no-channels-last))
COMMON_FLAGS = --data-root $(DATA_ROOT) --cache-dir $(CACHE_DIR) \
	$(if $(filter 0,$(DOWNLOAD)),--no-download,--download) $(WANDB_FLAG) --overwrite $(COMPUTE_FLAGS) $(EXTRA)
# PRETRAINED, WEIGHTS and SEED reach the commands through the stamps (experiments/make.py resolves them).
TRAIN_FLAGS = $(COMMON_FLAGS) $(if $(filter 1,$(COMPILE)),--compile)
EVAL_FLAGS = --data-root $(DATA_ROOT) --cache-dir $(CACHE_DIR) $(if $(filter 0,$(DOWNLOAD)),--no-download,--download) \
	$(WANDB_FLAG) $(COMPUTE_FLAGS) $(EXTRA)
WANDB_FLAG = $(if $(filter 0,$(WANDB)),--no-wandb,--wandb)
# Resume automatically when an interrupted run left a checkpoint.
RESUME = $(if $(wildcard $(@D)/checkpoint.pt),--resume)
# With GPUS: the first free GPU slot sets CUDA_VISIBLE_DEVICES for the command (and holds it until it ends).
GPU_SLOT = $(if $(GPUS),$(PYTHON) -m trainers.gpu_slot --gpus "$(GPUS)" --per-gpu $(JOBS_PER_GPU) --locks $(RESULTS)/.gpus --)
# under `make demo` every command starts as a fork of one warm process (runs/zygote.py); the same commands
TRUSTLAB_ZYGOTE ?=
PY = $(PYTHON)$(if $(TRUSTLAB_ZYGOTE), runs/zygote.py --)
RUN = $(GPU_SLOT) $(LAUNCH) $(PY)

# The sections' rules come from experiments/ (one entry per section): experiments/make.py writes them,
# and a stamp per results file holding its resolved config, as Make starts. A results file depends on
# its stamp and on the results it starts from, never on source files: a comment edit plans nothing.
BOOT_PYTHON := $(if $(wildcard $(PYTHON)),$(PYTHON),python3)
NOT_SECTIONS := help venv test demo bench bench-gpu gpu-check plan report wandb-report wandb-sync clean-results
ifneq ($(filter-out $(NOT_SECTIONS),$(or $(MAKECMDGOALS),help)),)
RULES := $(shell $(BOOT_PYTHON) -m experiments.make --profile '$(PROFILE)' --results '$(RESULTS)' --seed '$(SEED)' \
	--seeds '$(SEEDS)' --pretrained '$(PRETRAINED)' --weights '$(WEIGHTS)' --source '$(SOURCE)' --extra '$(EXTRA)' \
	--audit-points '$(AUDIT_POINTS)' --out-dir '$(RESULTS)/.make' 2>&1)
ifneq ($(.SHELLSTATUS),0)
$(error experiments/make.py: $(RULES))
endif
include $(RULES)
else
SECTIONS_q1 :=
SECTIONS_q2 :=
SECTIONS_dg :=
endif

.PHONY: help venv test demo demo-report q1 q2 dg all report wandb-report wandb-sync bench bench-gpu gpu-check plan clean-results

help: ## List the targets and variables
	@echo "trustlab — make TARGET [PROFILE=paper|quick|smoke|demo] [DATA_ROOT=data] [SEED=0 | SEEDS=\"0 1 2\"] [PRETRAINED=0|1]"
	@grep -E '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-26s %s\n", $$1, $$2}'
	@echo "sections (from experiments/sections.py):"
	@$(BOOT_PYTHON) -m experiments.make --help-targets
	@echo "variables: PROFILE DATA_ROOT CACHE_DIR RESULTS SEED SEEDS PRETRAINED WEIGHTS SOURCE DOWNLOAD WANDB COMPILE"
	@echo "           PRECISION (auto|bf16|fp32) CHANNELS_LAST (1|0) TARGETS (make plan: questions or sections)"
	@echo "           AUDIT_POINTS (test images for AutoAttack and the audit; default: the profile's) PUBLISH (make wandb-report)"
	@echo "           EXTRA (flags added to every command) GPUS JOBS_PER_GPU LAUNCHER PARTITION GPUS_PER_JOB TIME DEMO_JOBS TEST_JOBS PYTHON"
	@echo "           LOCK_WAIT (seconds a second make of a target waits for the one writing it; default 86400)"

venv: $(VENV)/.installed ## Create .venv and install requirements.txt

# After the install, umap's numba functions are compiled into the cache once (about 45 s here), so the first UMAP
# evaluation loads them (eval/umap_run.py warm_jit); a failure there only costs that time later.
$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt
	$(VENV)/bin/python -m eval.umap_run --warm $(CACHE_DIR) 2>/dev/null || echo "note: umap's JIT warm-up failed; the first UMAP evaluation compiles it"
	touch $@

# The suite runs on two single-threaded pytest workers (pytest-xdist, work stealing: the Make pipeline tests
# are long), after ruff's lint (rules in pyproject.toml). TEST_JOBS=1 runs it in one process.
TEST_JOBS ?= 2
test: | $(VENV_STAMP) ## Lint (ruff) and run the test suite on both cores
	$(PYTHON) -m ruff check --quiet .
	$(if $(filter 1,$(TEST_JOBS)),$(PYTHON) -m pytest -q tests,OMP_NUM_THREADS=1 $(PYTHON) -m pytest -q -n $(TEST_JOBS) --dist worksteal --durations=15 tests)

# The demo's sections are small: two single-threaded sections side by side use 2 cores better than one
# two-threaded section at a time, and they overlap the start-up of the Python processes. channels_last on the CPU:
# ResNet18 at 32 px trains about 10% and evaluates about 2x faster on this CPU (CHANNELS_LAST=0 turns it off).
# Q2 first: its chains (train, then evaluations) are longer, and Q1's short runs fill the gaps at the end.
DEMO_JOBS ?= 2
demo: | $(VENV_STAMP) ## The study at demo scale on embedded digits, no downloads (a few minutes on CPU)
	$(if $(filter 1,$(DEMO_JOBS)),,OMP_NUM_THREADS=1) $(PYTHON) runs/zygote.py serve -- $(MAKE) -j$(DEMO_JOBS) \
		--output-sync=target demo-report PROFILE=demo PRETRAINED=0 DOWNLOAD=0 \
		WANDB=$(if $(filter command line,$(origin WANDB)),$(WANDB),1) \
		CHANNELS_LAST=$(if $(filter command line,$(origin CHANNELS_LAST)),$(CHANNELS_LAST),1)
	@echo "demo report: $(RESULTS)/demo/REPORT.md"

# inside the demo's fork server: every section, then the report (Q2's longer chains first)
demo-report: q2 q1 dg
	$(MAKE) report PROFILE=$(PROFILE)

all: q1 q2 dg ## Every section of the study, and the DG digits benchmark beyond it

q1: $(SECTIONS_q1) ## Every Q1 section (generalization: SVHN -> MNIST)

dg: $(SECTIONS_dg) ## The DG digits benchmark (MNIST-10K -> USPS, SVHN, MNIST-M, SYN; targets whose data is missing are skipped and named)
	@$(PYTHON) -m experiments.make --profile '$(PROFILE)' --results '$(RESULTS)' --seed '$(SEED)' --seeds '$(SEEDS)' --skipped dg

q2: $(SECTIONS_q2) ## Every Q2 section (robustness: CIFAR-10, FGSM/PGD, adversarial training, Circle Loss)

bench: | $(VENV_STAMP) ## Speed ratios side by side (training, attacks, kNN, UMAP, scaling) -> results/bench/<host>.json
	$(PYTHON) bench/run.py $(EXTRA)

bench-gpu: | $(VENV_STAMP) ## The GPU throughput rows only (CUDA only) -> results/bench/<host>-gpu.json
	bash bench/gpu.sh $(PYTHON)

gpu-check: | $(VENV_STAMP) ## Everything a GPU should show before `make all` (<8 min, offline, ../shared/datasets): rows, a paper slice, nccl, projection
	$(PYTHON) bench/gpu_check.py

plan: ## Before a long run: per run folder, images x epochs, estimated time (from make bench), disk, done or not. TARGETS="q1 dg"
	@$(BOOT_PYTHON) -m experiments.costs --profile '$(PROFILE)' --results '$(RESULTS)' --seed '$(SEED)' \
		--seeds '$(SEEDS)' --pretrained '$(PRETRAINED)' --weights '$(WEIGHTS)' --bench-dir '$(RESULTS)/bench' \
		--audit-points '$(AUDIT_POINTS)' $(TARGETS)

report: | $(VENV_STAMP) ## REPORT.md for PROFILE from whatever results exist (study vs ours, mean ± std)
	$(PY) cli.py report --profile $(PROFILE) --results $(RESULTS) $(if $(filter 1,$(WANDB)),--wandb)

wandb-report: | $(VENV_STAMP) ## REPORT.md plus a W&B Report for PROFILE (wandb-workspaces): its spec as wandb-report.json; PUBLISH=1 publishes it (needs wandb login)
	$(PYTHON) cli.py report --profile $(PROFILE) --results $(RESULTS) --wandb-report $(if $(filter 1,$(PUBLISH)),--publish)

wandb-sync: | $(VENV_STAMP) ## Upload the offline W&B runs under results/wandb (needs WANDB_API_KEY or `wandb login`)
	@runs=$$(ls -d $(RESULTS)/wandb/wandb/offline-run-* 2>/dev/null || true); \
	if [ -z "$$runs" ]; then echo "wandb-sync: no offline runs under $(RESULTS)/wandb/wandb (runs log there unless WANDB=0 or --no-wandb)"; \
	else $(VENV)/bin/wandb sync --include-offline $$runs; fi

clean-results: ## Delete results/$(PROFILE) (asks first)
	@read -p "delete $(R)? [y/N] " a && [ "$$a" = y ] && rm -rf $(R) || echo kept
