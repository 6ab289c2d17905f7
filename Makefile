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
EXTRA ?=
RESULTS ?= results
VENV ?= .venv
PYTHON ?= $(VENV)/bin/python

R := $(RESULTS)/$(PROFILE)
CODE := cli.py experiments.py $(wildcard core/*.py models/*.py loaders/*.py trainers/*.py losses/*.py eval/*.py attacks/*.py)
# Build the virtual environment only when the default interpreter is in use.
VENV_STAMP := $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(VENV)/.installed)

COMMON_FLAGS = --profile $(PROFILE) --data-root $(DATA_ROOT) --cache-dir $(CACHE_DIR) --seed $(SEED) \
	$(if $(filter 0,$(DOWNLOAD)),--no-download,--download) $(if $(filter 0,$(WANDB)),--no-wandb,--wandb) \
	--overwrite $(EXTRA)
TRAIN_FLAGS = $(COMMON_FLAGS) $(if $(filter 0,$(PRETRAINED)),--no-pretrained) $(if $(WEIGHTS),--weights $(WEIGHTS))
# Resume automatically when an interrupted run left a checkpoint.
RESUME = $(if $(wildcard $(@D)/checkpoint.pt),--resume)

# Q2: the transfer source is the ImageNet model before fine-tuning (the study's), or without ImageNet
# weights (PRETRAINED=0) the trained q2-baseline run.
SOURCE ?= $(if $(filter 0,$(PRETRAINED)),$(R)/q2-baseline,pretrained)
SOURCE_DEP = $(if $(filter pretrained,$(SOURCE)),,$(SOURCE)/metrics.json)
UMAP_POINTS ?= $(if $(filter paper,$(PROFILE)),10000,$(if $(filter smoke,$(PROFILE)),100,$(if $(filter demo,$(PROFILE)),200,2000)))
EVAL_FLAGS = --data-root $(DATA_ROOT) --cache-dir $(CACHE_DIR) --seed $(SEED) --source $(SOURCE) \
	$(if $(filter 0,$(DOWNLOAD)),--no-download,--download) $(EXTRA)
Q2_ATTACKS = --method fgsm --method pgd --method noise+fgsm --threat white-box --threat transfer \
	--eps 8/255 --alpha 2/255 --steps 10 --eps-sweep 0,1/255,2/255,4/255,8/255,16/255

Q1_TRAIN := q1-baseline q1-no-bn q1-label-smoothing q1-augmentation q1-pretrained q1-adam q1-reverse-unsupervised
Q1 := $(Q1_TRAIN) q1-reverse-supervised

Q2 := q2-examples q2-baseline q2-adversarial q2-circle

.PHONY: help venv test demo q1 q2 all $(Q1) $(Q2) clean-results

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

demo: | $(VENV_STAMP) ## The study at demo scale on embedded digits, no downloads (a few minutes on CPU)
	$(MAKE) q1 q2 PROFILE=demo PRETRAINED=0 DOWNLOAD=0
	@echo "demo results: $(RESULTS)/demo/"

all: q1 q2 ## Every section of the study

q1: $(Q1) ## Every Q1 section (generalization: SVHN -> MNIST)

q2: $(Q2) ## Every Q2 section (robustness: CIFAR-10, FGSM/PGD, adversarial training, Circle Loss)

q2-examples: $(R)/q2-examples/robustness.json
q2-baseline: $(R)/q2-baseline/robustness.json $(R)/q2-baseline/umap.json
q2-adversarial: $(R)/q2-adversarial/robustness.json
q2-circle: $(R)/q2-circle/robustness.json $(R)/q2-circle/knn.json $(R)/q2-circle/umap.json

$(foreach s,$(Q1),$(eval $(s): $(R)/$(s)/metrics.json))

# Training sections: one pattern rule; the file depends on the code that makes it.
$(R)/%/metrics.json: $(CODE) | $(VENV_STAMP)
	$(PYTHON) cli.py train --preset $* --out $(@D) $(TRAIN_FLAGS) $(RESUME)

$(R)/q1-reverse-supervised/metrics.json: $(R)/q1-reverse-unsupervised/metrics.json $(CODE) | $(VENV_STAMP)
	$(PYTHON) cli.py finetune-fc --preset q1-reverse-supervised --from-run $(<D) --out $(@D) $(COMMON_FLAGS) $(RESUME)

# Q2 evaluations of a trained run: white-box and transfer FGSM, PGD and the study's noise+FGSM.
$(R)/%/robustness.json: $(R)/%/metrics.json $$(SOURCE_DEP) $(CODE) | $(VENV_STAMP)
	$(PYTHON) cli.py attack --model $(@D) $(Q2_ATTACKS) $(EVAL_FLAGS) --out $@

$(R)/q2-examples/robustness.json: $(R)/q2-baseline/metrics.json $$(SOURCE_DEP) $(CODE) | $(VENV_STAMP)
	$(PYTHON) cli.py attack --model $(<D) --method noise+fgsm --threat white-box --threat transfer $(EVAL_FLAGS) --out $@

$(R)/%/knn.json: $(R)/%/metrics.json $$(SOURCE_DEP) $(CODE) | $(VENV_STAMP)
	$(PYTHON) cli.py knn-eval --model $(@D) --k 3 --attack noise+fgsm --threat transfer $(EVAL_FLAGS) --out $@

$(R)/%/umap.json: $(R)/%/metrics.json $(CODE) | $(VENV_STAMP)
	$(PYTHON) cli.py umap --model $(@D) --attack noise+fgsm --threat white-box --max-points $(UMAP_POINTS) \
		$(filter-out --source $(SOURCE),$(EVAL_FLAGS)) $(if $(filter 0,$(WANDB)),--no-wandb,--wandb) --out $@

clean-results: ## Delete results/$(PROFILE) (asks first)
	@read -p "delete $(R)? [y/N] " a && [ "$$a" = y ] && rm -rf $(R) || echo kept
