# The Makefile is the user interface of this repository: `make` alone lists every target.
# Each concern keeps its targets in mk/<concern>.mk; this file holds what they all share.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# ---- Settings (override on the command line or in the environment) -------------------------
PYTHON ?= python3
VENV ?= .venv
ARTIFACTS ?= artifacts
MODEL_NAME ?= mnist
DATA_DIR ?= $(ARTIFACTS)/data/mnist
TRAIN_DIR ?= $(ARTIFACTS)/training
MODEL_BASE_PATH ?= $(ARTIFACTS)/models/$(MODEL_NAME)
GRPC_PORT ?= 8500
REST_PORT ?= 8501
UI_PORT ?= 8080
# Where make run / serve / ui listen: loopback, as the local stack has no sign-in; HOST=0.0.0.0
# opens every port to the network (and says so).
HOST ?= 127.0.0.1
export MODEL_NAME GRPC_PORT REST_PORT UI_PORT HOST
# Quiet by default: VERBOSE=1 (or any LOG_LEVEL) shows TensorFlow's start-up lines and absl's
# per-epoch lines; the programs read both from the environment (mnist_common.quiet_start).
VERBOSE ?=

VENV_PY := $(VENV)/bin/python
VENV_BIN := $(VENV)/bin
CONSTRAINTS := requirements/constraints.txt
# Every Python package of this repo, installed editable into .venv: the shared library, the
# services, load-test support and the tools (see docs/architecture.md for the layers).
PACKAGES := libs/serving_protos libs/mnist_common services/trainer services/model-exporter services/tf-serving services/web-ui \
  loadtest tools/mnist_run tools/mnist_deploy tools/mnist_rollout tools/mnist_bench
SETUP_STAMP := $(VENV)/.setup-done
# TF Serving's protos for clients that run no model (the web UI), generated from the pinned
# tensorflow-serving-api into libs/serving_protos (git-ignored) at every set-up.
PROTOS_GENERATOR := libs/serving_protos/src/mnist_serving_protos/generate.py

# Every venv starts with this check (TensorFlow's wheels and every lock are for 3.11); $(1) says
# which venv, for the message.
define require_python_311
@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || \
  { echo "error: Python 3.11 is required$(1); '$(PYTHON)' is $$($(PYTHON) --version 2>&1). Set PYTHON=/path/to/python3.11." >&2; exit 2; }
endef

# The recipe of a tool's own venv from its own lock, for tools whose pins clash with .venv's
# (checkov, KServe): $(1) the tool's name, $(2) the venv, $(3) its constraints, $(4) what to install.
define tool_venv
$(call require_python_311, for $(1)'s venv)
@test -x $(2)/bin/python || $(PYTHON) -m venv $(2)
$(2)/bin/python -m pip install --quiet -c $(3) $(4) || \
  { echo "error: installing $(1) into $(2) failed: PyPI must be reachable (or delete $(2) and retry)" >&2; exit 1; }
@touch $@
endef

##@ Getting started

.PHONY: help
help: ## Show every target with one line of help (the default target)
	@if [ -t 1 ]; then bold=$$'\033[1m'; cyan=$$'\033[36m'; off=$$'\033[0m'; else bold= cyan= off=; fi; \
	 awk -v bold="$$bold" -v cyan="$$cyan" -v off="$$off" 'BEGIN {FS = ":.*?## "} \
	  /^##@/ {printf "\n%s%s%s\n", bold, substr($$0, 5), off; next} \
	  /^[a-zA-Z0-9_.-]+:.*?## / {printf "  %s%-18s%s %s\n", cyan, $$1, off, $$2}' $(MAKEFILE_LIST); \
	 for pair in $(HELP_GENERATED); do printf "  %s%-18s%s %s\n" "$$cyan" "$${pair%%=*}" "$$off" "Run the tests of $${pair#*=} (PYTEST_ARGS=... to narrow)"; done
	@echo
	@echo "Variables (make VAR=value target): PYTHON VENV ARTIFACTS MODEL_NAME DATA_DIR TRAIN_DIR"
	@echo "  MODEL_BASE_PATH GRPC_PORT REST_PORT UI_PORT HOST DATA_SOURCE; see README.md for the rest."

.PHONY: setup
setup: $(SETUP_STAMP) ## Create .venv with every service and tool, pinned by requirements/constraints.txt

# The stamp depends on every file that decides what is installed, so a second run does nothing
# and a change to the lock or a pyproject.toml reinstalls.
# uv (the release the lock pins, installed into .venv by the venv's own pip) installs the lock
# with uv's cache, a drop-in for pip at a fraction of its time (docs/benchmarks.md).
# INSTALLER=pip uses pip throughout. Either way mnist_run.lock_check then fails the set-up unless
# .venv holds exactly what the lock pins. The install commands are written out in full (no shell
# variable), so `make -n setup` shows what runs and tests/deploy resolves each one.
INSTALLER ?= uv
SETUP_PIP := $(VENV_PY) -m pip install --quiet
SETUP_INSTALL = $(if $(filter uv,$(INSTALLER)),$(VENV_BIN)/uv pip install --quiet --python $(VENV_PY),$(SETUP_PIP))
setup_failed = { echo "error: installing the lock into $(VENV) failed (see above)$(if $(filter uv,$(INSTALLER)),; 'make setup INSTALLER=pip' installs with pip instead)" >&2; exit 1; }
$(SETUP_STAMP): $(CONSTRAINTS) requirements/dev.in $(addsuffix /pyproject.toml,$(PACKAGES)) $(PROTOS_GENERATOR)
	$(call require_python_311)
	@case "$(INSTALLER)" in uv|pip) ;; *) echo "error: INSTALLER=$(INSTALLER) must be uv or pip" >&2; exit 2 ;; esac
	@test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(if $(filter uv,$(INSTALLER)),$(SETUP_PIP) -c $(CONSTRAINTS) uv,$(SETUP_PIP) --upgrade pip) || \
	  { echo "error: could not install $(if $(filter uv,$(INSTALLER)),uv,pip's upgrade) into $(VENV) (see above)$(if $(filter uv,$(INSTALLER)),; 'make setup INSTALLER=pip' installs with pip instead)" >&2; exit 1; }
	@echo "setup: installing the lock with $(INSTALLER)"
	$(SETUP_INSTALL) -c $(CONSTRAINTS) setuptools wheel || $(setup_failed)
	$(SETUP_INSTALL) -c $(CONSTRAINTS) -r requirements/dev.in || $(setup_failed)
	$(SETUP_INSTALL) -c $(CONSTRAINTS) --no-build-isolation $(addprefix -e ,$(PACKAGES)) || $(setup_failed)
	$(VENV_PY) -m mnist_run.lock_check $(CONSTRAINTS)
	$(VENV_PY) -m mnist_serving_protos.generate
	@touch $@

.PHONY: lock
lock: $(SETUP_STAMP) ## Rewrite requirements/constraints.txt from what .venv has installed
	@{ sed -n '1,2p' $(CONSTRAINTS); \
	   $(VENV_PY) -m pip freeze --exclude-editable | grep -v -E '^(pip|wheel)=='; \
	   $(VENV_PY) -m pip freeze --all | grep '^setuptools=='; } > $(CONSTRAINTS).tmp
	@mv $(CONSTRAINTS).tmp $(CONSTRAINTS)
	@echo "wrote $(CONSTRAINTS)"

.PHONY: clean
clean: ## Delete generated artifacts (data, training runs, models, reports); keeps .venv
	rm -rf $(ARTIFACTS)

.PHONY: distclean
distclean: clean ## Delete artifacts and .venv
	rm -rf $(VENV)

include $(sort $(wildcard mk/*.mk))
