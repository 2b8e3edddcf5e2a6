##@ Export

# The validation gate (see services/model-exporter/README.md). MIN_ACCURACY: refuse a model below
# this validation accuracy; MAX_REGRESSION: refuse one worse than the newest published version by
# more than this; KEEP_VERSIONS: how many versions retention keeps.
MIN_ACCURACY ?= 0.97
MAX_REGRESSION ?= 0.005
KEEP_VERSIONS ?= 3
# Extra mnist-export flags, e.g. EXPORT_FLAGS="--force" to publish a regression on purpose.
EXPORT_FLAGS ?=
# Written last by the trainer: a finished run (mnist_common.pipeline.TRAINING_METRICS_FILE).
TRAINING_METRICS_FILE := metrics.json

.PHONY: export
export: $(SETUP_STAMP) data ## Validate the trained model and publish it as the next version in MODEL_BASE_PATH; trains first if TRAIN_DIR has no finished run (no-op if already published)
	@case "$(TRAIN_DIR)" in *://*) ;; *) test -f "$(TRAIN_DIR)/$(TRAINING_METRICS_FILE)" || \
	  { echo "export: no finished training in $(TRAIN_DIR) yet ($(TRAINING_METRICS_FILE) is missing): training first (make train)" >&2; \
	    $(MAKE) train; } ;; esac
	@protect=$$($(if $(filter rollout,$(VERSION_POLICY)),$(ROLLOUT) versions,true)); \
	 $(VENV_BIN)/mnist-export $$(for v in $$protect; do printf -- '--protect %s ' "$$v"; done) --train-dir "$(TRAIN_DIR)" --data-dir "$(DATA_DIR)" \
	  --model-base-path "$(MODEL_BASE_PATH)" --model-name "$(MODEL_NAME)" \
	  --min-accuracy "$(MIN_ACCURACY)" --max-regression "$(MAX_REGRESSION)" --keep-versions "$(KEEP_VERSIONS)" \
	  $(EXPORT_FLAGS)
	$(if $(filter rollout,$(VERSION_POLICY)),$(if $(findstring ://,$(MODEL_BASE_PATH)),,@$(ROLLOUT) publish $(call percent_flag,$(CANARY_PERCENT))))

.PHONY: versions
versions: $(SETUP_STAMP) ## List the published model versions in MODEL_BASE_PATH with their validation accuracy
	@$(VENV_PY) -m mnist_exporter.list_versions "$(MODEL_BASE_PATH)"

.PHONY: test-export
test-export: $(SETUP_STAMP) data ## Run the exporter's tests (tests/model_exporter)
	$(VENV_PY) -m pytest tests/model_exporter -q

# make quick-model: something to serve in under a minute (2 epochs reach about 97 %), trained in
# its own folder so a full run in TRAIN_DIR stays as it is, and published only when
# MODEL_BASE_PATH has no version yet, so it never covers a real model.
QUICK_TRAIN_DIR ?= $(ARTIFACTS)/training-quick
QUICK_EPOCHS ?= 2
QUICK_MIN_ACCURACY ?= 0.95

.PHONY: quick-model
quick-model: $(SETUP_STAMP) data ## A model to try serving with, in under a minute (QUICK_EPOCHS=2, gate QUICK_MIN_ACCURACY); only if MODEL_BASE_PATH has none
	@if $(VENV_PY) -m mnist_common.pipeline has-version "$(MODEL_BASE_PATH)"; then \
	   echo "quick-model: $(MODEL_BASE_PATH) already holds a version; 'make serve' serves it"; \
	 else $(MAKE) _quick-model; fi

# Its own target, so that `make -n quick-model` only prints the training (make runs a recipe line
# that names $(MAKE) even under -n).
.PHONY: _quick-model
_quick-model:
	$(VENV_BIN)/mnist-train --data-dir "$(DATA_DIR)" --model-dir "$(QUICK_TRAIN_DIR)" --epochs $(QUICK_EPOCHS)
	@$(MAKE) export TRAIN_DIR="$(QUICK_TRAIN_DIR)" MIN_ACCURACY=$(QUICK_MIN_ACCURACY)
