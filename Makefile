# trustlab: one target per report section, on top of real result-file targets.
# `make help` lists them. Variables: PROFILE, DATA_ROOT, SEED, PRETRAINED, WEIGHTS, DOWNLOAD, WANDB.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --warn-undefined-variables

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

Q1_TRAIN := q1-baseline q1-no-bn q1-label-smoothing q1-augmentation q1-pretrained q1-adam q1-reverse-unsupervised
Q1 := $(Q1_TRAIN) q1-reverse-supervised

.PHONY: help venv test demo q1 $(Q1) clean-results

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
	$(MAKE) q1 PROFILE=demo PRETRAINED=0 DOWNLOAD=0
	@echo "demo results: $(RESULTS)/demo/"

q1: $(Q1) ## Every Q1 section (generalization: SVHN -> MNIST)

$(foreach s,$(Q1),$(eval $(s): $(R)/$(s)/metrics.json))

# Training sections: one pattern rule; the file depends on the code that makes it.
$(R)/%/metrics.json: $(CODE) | $(VENV_STAMP)
	$(PYTHON) cli.py train --preset $* --out $(@D) $(TRAIN_FLAGS) $(RESUME)

$(R)/q1-reverse-supervised/metrics.json: $(R)/q1-reverse-unsupervised/metrics.json $(CODE) | $(VENV_STAMP)
	$(PYTHON) cli.py finetune-fc --preset q1-reverse-supervised --from-run $(<D) --out $(@D) $(COMMON_FLAGS) $(RESUME)

clean-results: ## Delete results/$(PROFILE) (asks first)
	@read -p "delete $(R)? [y/N] " a && [ "$$a" = y ] && rm -rf $(R) || echo kept
