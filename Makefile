# trustlab: one target per report section, on top of real result-file targets.
# `make help` lists them. Variables: PROFILE, DATA_ROOT, SEED, PRETRAINED, WEIGHTS, DOWNLOAD, WANDB.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --warn-undefined-variables
.SECONDEXPANSION:
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
EXTRA ?=
RESULTS ?= results
VENV ?= .venv
PYTHON ?= $(VENV)/bin/python

SEEDS ?=
R := $(RESULTS)/$(PROFILE)
# Scale-out. GPUS="0 1 2 3" pins each section to one GPU (round robin over the run folders) for make -j.
# LAUNCHER=slurm submits each section as a SLURM job through submitit (LAUNCHER=local: submitit's local executor).
GPUS ?=
LAUNCHER ?=
PARTITION ?=
GPUS_PER_JOB ?= 1
TIME ?= 240
LAUNCH = $(if $(LAUNCHER),$(PYTHON) -m trainers.launcher --executor $(LAUNCHER) --gpus $(GPUS_PER_JOB) --time $(TIME) --logs $(RESULTS)/slurm \
	$(if $(PARTITION),--partition $(PARTITION)) --)
# A run folder is $(R)/<preset> for one seed (SEED), or $(R)/<preset>/seed-<n> for each n in SEEDS.
runs = $(if $(SEEDS),$(foreach n,$(SEEDS),$(R)/$(1)/seed-$(n)),$(R)/$(1))
files = $(addsuffix /$(2),$(call runs,$(1)))
preset_of = $(firstword $(subst /, ,$(1)))
seed_suffix = $(if $(findstring /seed-,$(1)),/$(lastword $(subst /, ,$(1))))
seed_of = $(if $(findstring /seed-,$(1)),$(patsubst seed-%,%,$(lastword $(subst /, ,$(1)))),$(SEED))
CODE := cli.py experiments.py $(wildcard core/*.py models/*.py loaders/*.py trainers/*.py losses/*.py eval/*.py attacks/*.py)
# Build the virtual environment only when the default interpreter is in use.
VENV_STAMP := $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(VENV)/.installed)

COMMON_FLAGS = --profile $(PROFILE) --data-root $(DATA_ROOT) --cache-dir $(CACHE_DIR) \
	$(if $(filter 0,$(DOWNLOAD)),--no-download,--download) $(if $(filter 0,$(WANDB)),--no-wandb,--wandb) \
	--overwrite $(EXTRA)
TRAIN_FLAGS = $(COMMON_FLAGS) $(if $(filter 0,$(PRETRAINED)),--no-pretrained) $(if $(WEIGHTS),--weights $(WEIGHTS)) \
	$(if $(filter 1,$(COMPILE)),--compile)
# Resume automatically when an interrupted run left a checkpoint.
RESUME = $(if $(wildcard $(@D)/checkpoint.pt),--resume)

# Q2: the transfer source is the ImageNet model before fine-tuning (the study's), or without ImageNet
# weights (PRETRAINED=0) the trained q2-baseline run.
# With several seeds, each seed's runs are attacked with that seed's q2-baseline as the source.
SOURCE ?=
source_of = $(or $(SOURCE),$(if $(filter 0,$(PRETRAINED)),$(R)/q2-baseline$(call seed_suffix,$(1)),pretrained))
source_dep = $(if $(filter pretrained,$(call source_of,$(1))),,$(call source_of,$(1))/metrics.json)
# The reverse-supervised extra figure: SVHN accuracy against the number of fine-tuning samples.
CURVE_SAMPLES ?= $(if $(filter smoke,$(PROFILE)),25 50,$(if $(filter demo,$(PROFILE)),50 100 200 400,100 200 400 800 1600 3200))
UMAP_POINTS ?= $(if $(filter paper,$(PROFILE)),10000,$(if $(filter smoke,$(PROFILE)),100,$(if $(filter demo,$(PROFILE)),200,2000)))
EVAL_FLAGS = --data-root $(DATA_ROOT) --cache-dir $(CACHE_DIR) \
	$(if $(filter 0,$(DOWNLOAD)),--no-download,--download) $(EXTRA)
Q2_ATTACKS = --method fgsm --method pgd --method noise+fgsm --threat white-box --threat transfer \
	--eps 8/255 --alpha 2/255 --steps 10 --eps-sweep 0,1/255,2/255,4/255,8/255,16/255

Q1_TRAIN := q1-baseline q1-no-bn q1-label-smoothing q1-augmentation q1-pretrained q1-adam q1-reverse-unsupervised
Q1 := $(Q1_TRAIN) q1-reverse-supervised

Q2 := q2-examples q2-baseline q2-adversarial q2-circle
ALL_STEMS = $(patsubst $(R)/%,%,$(foreach s,$(Q1) $(Q2),$(call runs,$(s))))
# CUDA_VISIBLE_DEVICES for the run folder $(1): its position among all run folders, modulo the GPU count.
gpu_env = $(if $(GPUS),CUDA_VISIBLE_DEVICES=$$(s=($(ALL_STEMS)); g=($(GPUS)); for i in "$${!s[@]}"; do \
	[ "$${s[$$i]}" = "$(1)" ] && echo "$${g[$$((i % $${#g[@]}))]}"; done))
RUN = $(call gpu_env,$(patsubst $(R)/%,%,$(@D))) $(LAUNCH) $(PYTHON)

.PHONY: help venv test demo q1 q1-finetune-curve q2 all report wandb-sync bench bench-gpu $(Q1) $(Q2) clean-results

help: ## List the targets
	@echo "trustlab — make TARGET [PROFILE=paper|quick|smoke|demo] [DATA_ROOT=data] [SEED=0] [PRETRAINED=0|1]"
	@grep -E '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-26s %s\n", $$1, $$2}'
	@echo "  q1-<section>               one Q1 section: $(Q1)"

venv: $(VENV)/.installed ## Create .venv and install requirements.txt

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

test: | $(VENV_STAMP) ## Run the test suite
	$(PYTHON) -m pytest -q tests

# The demo's sections are small: two single-threaded sections side by side use 2 cores better than one
# two-threaded section at a time, and they overlap the start-up of the Python processes.
DEMO_JOBS ?= 2
demo: | $(VENV_STAMP) ## The study at demo scale on embedded digits, no downloads (a few minutes on CPU)
	$(if $(filter 1,$(DEMO_JOBS)),,OMP_NUM_THREADS=1) $(MAKE) -j$(DEMO_JOBS) --output-sync=target \
		q1 q2 PROFILE=demo PRETRAINED=0 DOWNLOAD=0 WANDB=$(if $(filter command line,$(origin WANDB)),$(WANDB),0)
	$(MAKE) report PROFILE=demo
	@echo "demo report: $(RESULTS)/demo/REPORT.md"

all: q1 q2 ## Every section of the study

q1: $(Q1) q1-finetune-curve ## Every Q1 section (generalization: SVHN -> MNIST)

q1-finetune-curve: $(foreach n,$(CURVE_SAMPLES),$(R)/q1-finetune-curve/samples-$(n)/metrics.json) ## fc fine-tuning on 100..3200 SVHN images

$(R)/q1-finetune-curve/samples-%/metrics.json: $(R)/q1-reverse-unsupervised/metrics.json $(CODE) | $(VENV_STAMP)
	$(RUN) cli.py finetune-fc --preset q1-reverse-supervised --samples $* --seed $(SEED) --from-run $(<D) --out $(@D) \
		$(COMMON_FLAGS) $(RESUME)

q2: $(Q2) ## Every Q2 section (robustness: CIFAR-10, FGSM/PGD, adversarial training, Circle Loss)

q2-examples: $(call files,q2-examples,robustness.json)
q2-baseline: $(call files,q2-baseline,robustness.json) $(call files,q2-baseline,umap.json)
q2-adversarial: $(call files,q2-adversarial,robustness.json)
q2-circle: $(call files,q2-circle,robustness.json) $(call files,q2-circle,knn.json) $(call files,q2-circle,umap.json)

bench: | $(VENV_STAMP) ## Speed ratios side by side (training, attacks, kNN, UMAP, scaling) -> results/bench/<host>.json
	$(PYTHON) bench/run.py $(EXTRA)

bench-gpu: | $(VENV_STAMP) ## The short GPU check (CUDA only) -> results/bench/<host>-gpu.json
	bash bench/gpu.sh $(PYTHON)

report: | $(VENV_STAMP) ## REPORT.md for PROFILE from whatever results exist (study vs ours, mean ± std)
	$(PYTHON) cli.py report --profile $(PROFILE) --results $(RESULTS)

wandb-sync: | $(VENV_STAMP) ## Upload the offline W&B runs under results/wandb (needs WANDB_API_KEY or `wandb login`)
	$(VENV)/bin/wandb sync --include-offline $(RESULTS)/wandb/wandb/offline-run-*

$(foreach s,$(Q1),$(eval $(s): $(call files,$(s),metrics.json)))

# Training sections: one pattern rule; the file depends on the code that makes it.
$(R)/%/metrics.json: $(CODE) | $(VENV_STAMP)
	$(RUN) cli.py train --preset $(call preset_of,$*) --seed $(call seed_of,$*) --out $(@D) $(TRAIN_FLAGS) $(RESUME)

$(R)/q1-reverse-supervised/metrics.json: $(R)/q1-reverse-unsupervised/metrics.json $(CODE) | $(VENV_STAMP)
	$(RUN) cli.py finetune-fc --preset q1-reverse-supervised --seed $(SEED) --from-run $(<D) --out $(@D) $(COMMON_FLAGS) $(RESUME)

$(R)/q1-reverse-supervised/seed-%/metrics.json: $(R)/q1-reverse-unsupervised/seed-%/metrics.json $(CODE) | $(VENV_STAMP)
	$(RUN) cli.py finetune-fc --preset q1-reverse-supervised --seed $* --from-run $(<D) --out $(@D) $(COMMON_FLAGS) $(RESUME)

# Q2 evaluations of a trained run: white-box and transfer FGSM, PGD and the study's noise+FGSM.
$(R)/%/robustness.json: $(R)/%/metrics.json $$(call source_dep,$$*) $(CODE) | $(VENV_STAMP)
	$(RUN) cli.py attack --model $(@D) $(Q2_ATTACKS) --seed $(call seed_of,$*) --source $(call source_of,$*) \
		$(EVAL_FLAGS) --out $@

# q2-examples draws from the q2-baseline run of the same seed.
EXAMPLES = $(RUN) cli.py attack --model $(<D) --method noise+fgsm --threat white-box --threat transfer \
	--seed $(call seed_of,$(1)) --source $(call source_of,$(1)) $(EVAL_FLAGS) --out $@
$(R)/q2-examples/robustness.json: $(R)/q2-baseline/metrics.json $$(call source_dep,q2-examples) $(CODE) | $(VENV_STAMP)
	$(call EXAMPLES,q2-examples)
$(R)/q2-examples/seed-%/robustness.json: $(R)/q2-baseline/seed-%/metrics.json $$(call source_dep,q2-examples/seed-$$*) \
		$(CODE) | $(VENV_STAMP)
	$(call EXAMPLES,q2-examples/seed-$*)

$(R)/%/knn.json: $(R)/%/metrics.json $$(call source_dep,$$*) $(CODE) | $(VENV_STAMP)
	$(RUN) cli.py knn-eval --model $(@D) --k 3 --attack noise+fgsm --threat transfer --seed $(call seed_of,$*) \
		--source $(call source_of,$*) $(EVAL_FLAGS) --out $@

$(R)/%/umap.json: $(R)/%/metrics.json $(CODE) | $(VENV_STAMP)
	$(RUN) cli.py umap --model $(@D) --attack noise+fgsm --threat white-box --max-points $(UMAP_POINTS) \
		--seed $(call seed_of,$*) $(EVAL_FLAGS) $(if $(filter 0,$(WANDB)),--no-wandb,--wandb) --out $@

clean-results: ## Delete results/$(PROFILE) (asks first)
	@read -p "delete $(R)? [y/N] " a && [ "$$a" = y ] && rm -rf $(R) || echo kept
