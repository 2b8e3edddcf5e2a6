##@ Model server

# The real TF Serving image `make serve-docker` runs: the same pin as kustomize/base/tf-serving.yaml
# (tensorflow/serving's newest release is 2.20.0; there is no 2.21.0, see kustomize/README.md).
SERVING_IMAGE ?= tensorflow/serving:2.20.0
SERVING_CONFIG_DIR := services/tf-serving/config
# POLL_SECONDS (mk/60-run.mk): how often the server looks for new versions under MODEL_BASE_PATH.
# One TensorFlow thread per op: the batcher's num_batch_threads (one per core) give the
# parallelism, and a 64-image batch costs a third less CPU than with two threads fighting per op.
SERVING_TF_THREADS ?= --tensorflow_intra_op_parallelism=1 --tensorflow_inter_op_parallelism=1
# The rollout's models.config names versions by labels; TF Serving checks labels before it loads
# anything, so a labelled config starts only with this flag (as kustomize/base/tf-serving.yaml).
ALLOW_LABELS_FLAG := --allow_version_labels_for_unavailable_models
# make bench-serving: measured seconds per cell, and the concurrencies.
BENCH_SERVING_SECONDS ?= 8
BENCH_SERVING_CONCURRENCY ?= 1,16,64
# make bench-serving's reference row: KServe's Python model server, in a venv of its own (kserve
# pins protobuf, FastAPI and uvicorn releases of its own), locked by requirements/kserve-constraints.txt.
KSERVE_VENV := $(ARTIFACTS)/kserve/venv
KSERVE_CONSTRAINTS := requirements/kserve-constraints.txt
KSERVE_STAMP := $(KSERVE_VENV)/.setup-done
# The TensorFlow release the pinned TF Serving is built for, in a venv of its own: the exported
# SavedModel must load and answer there (mnist_exporter/serving_runtime_check.py).
SERVING_COMPAT_VENV := $(ARTIFACTS)/serving-compat/venv
SERVING_COMPAT_CONSTRAINTS := requirements/serving-compat-constraints.txt
SERVING_COMPAT_STAMP := $(SERVING_COMPAT_VENV)/.setup-done
SERVING_RUNTIME_CHECK := services/model-exporter/src/mnist_exporter/serving_runtime_check.py
# tests/model_exporter/test_serving_runtime.py finds the venv here (also when ARTIFACTS is elsewhere).
export SERVING_COMPAT_PYTHON := $(abspath $(SERVING_COMPAT_VENV)/bin/python)

# Fails with the next step to take when MODEL_BASE_PATH has no numbered version yet.
# (The version-folder rule is the pipeline's: mnist_common.pipeline.)
define require_model_version
	@case "$(MODEL_BASE_PATH)" in *://*) ;; *) \
	  $(VENV_PY) -m mnist_common.pipeline has-version "$(MODEL_BASE_PATH)" || \
	  { echo "error: no model version in $(MODEL_BASE_PATH): run 'make train' and 'make export' first (or 'make run')" >&2; exit 2; } ;; esac
endef

# Said by make serve, ui and run whenever HOST is not loopback.
define warn_if_open
	@case "$(HOST)" in 127.*|localhost|::1) ;; *) \
	  echo "warning: HOST=$(HOST): listening beyond this machine, without authentication: anyone who can reach $(HOST) can use the model server and the web UI" >&2 ;; esac
endef

# make serve on a fresh clone: with no version yet it makes one first, as make run does (make
# export, which trains when TRAIN_DIR holds no finished run); a version there is served as it is.
define ensure_model_version
	@case "$(MODEL_BASE_PATH)" in *://*) ;; *) \
	  $(VENV_PY) -m mnist_common.pipeline has-version "$(MODEL_BASE_PATH)" || \
	  { echo "serve: no model version in $(MODEL_BASE_PATH) yet: making one first (make export, which trains if needed)" >&2; \
	    $(MAKE) export; } ;; esac
endef

.PHONY: serve
serve: $(SETUP_STAMP) ## TF Serving stand-in in the foreground on MODEL_BASE_PATH (gRPC GRPC_PORT, REST REST_PORT); trains and exports a model first if there is none
	$(ensure_model_version)
	$(warn_if_open)
	@echo "serve: model '$(MODEL_NAME)' from $(MODEL_BASE_PATH); gRPC $(HOST):$(GRPC_PORT), REST http://$(HOST):$(REST_PORT)/v1/models/$(MODEL_NAME), metrics /monitoring/prometheus/metrics; Ctrl-C stops"
	@case "$(VERSION_POLICY)" in rollout|latest) ;; *) echo "error: VERSION_POLICY=$(VERSION_POLICY) must be rollout or latest" >&2; exit 2 ;; esac
	$(if $(filter rollout,$(VERSION_POLICY)),@$(ROLLOUT) init)
	@exec $(VENV_BIN)/tfserving-standin --host=$(HOST) --port=$(GRPC_PORT) --rest_api_port=$(REST_PORT) \
	  $(if $(filter rollout,$(VERSION_POLICY)),--model_config_file="$(MODEL_CONFIG_FILE)" --model_config_file_poll_wait_seconds=$(POLL_SECONDS) $(ALLOW_LABELS_FLAG),--model_name=$(MODEL_NAME) --model_base_path="$(MODEL_BASE_PATH)") \
	  --file_system_poll_wait_seconds=$(POLL_SECONDS) $(SERVING_TF_THREADS) \
	  --enable_batching --batching_parameters_file=$(SERVING_CONFIG_DIR)/batching_parameters.txt \
	  --monitoring_config_file=$(SERVING_CONFIG_DIR)/monitoring.config

.PHONY: serve-docker
serve-docker: ## The real tensorflow/serving image (SERVING_IMAGE) on MODEL_BASE_PATH with the cluster's config files (needs Docker)
	@command -v docker >/dev/null 2>&1 || \
	  { echo "error: docker is not installed here; 'make serve' runs the stand-in instead" >&2; exit 2; }
	@docker info >/dev/null 2>&1 || \
	  { echo "error: docker cannot reach a Docker engine (is the daemon running, may this user use it?); 'make serve' runs the stand-in instead" >&2; exit 2; }
	$(require_model_version)
	@test "$(MODEL_NAME)" = mnist || { echo "error: $(SERVING_CONFIG_DIR)/models.config serves the model 'mnist', not '$(MODEL_NAME)'" >&2; exit 2; }
	@echo "serve-docker: $(SERVING_IMAGE) on $(MODEL_BASE_PATH); gRPC :$(GRPC_PORT), REST :$(REST_PORT). Contract suite against it:"
	@echo "  SERVING_REST_URL=http://127.0.0.1:$(REST_PORT) SERVING_GRPC_ADDRESS=127.0.0.1:$(GRPC_PORT) SERVING_MODEL_BASE_PATH=$(MODEL_BASE_PATH) make test-serving"
	docker run --rm --init --name mnist-tf-serving \
	  -p 127.0.0.1:$(GRPC_PORT):8500 -p 127.0.0.1:$(REST_PORT):8501 \
	  -v "$(abspath $(MODEL_BASE_PATH))":/models/mnist \
	  -v "$(abspath $(SERVING_CONFIG_DIR))":/etc/tf-serving:ro \
	  --entrypoint tensorflow_model_server $(SERVING_IMAGE) \
	  --port=8500 --rest_api_port=8501 --model_config_file=/etc/tf-serving/models.config \
	  --monitoring_config_file=/etc/tf-serving/monitoring.config \
	  --enable_batching=true --batching_parameters_file=/etc/tf-serving/batching_parameters.txt \
	  --file_system_poll_wait_seconds=$(POLL_SECONDS)

.PHONY: test-serving
test-serving: $(SETUP_STAMP) data ## Contract suite (REST + gRPC) against a fresh stand-in, or SERVING_REST_URL + SERVING_GRPC_ADDRESS if set
	$(VENV_PY) -m pytest tests/tf_serving -q $(PYTEST_ARGS)

.PHONY: kserve-setup
kserve-setup: $(KSERVE_STAMP) ## Create the isolated KServe venv under ARTIFACTS (bench-serving's reference), pinned by requirements/kserve-constraints.txt

$(KSERVE_STAMP): $(KSERVE_CONSTRAINTS)
	$(call tool_venv,KServe,$(KSERVE_VENV),$(KSERVE_CONSTRAINTS),kserve tensorflow)

.PHONY: serving-compat-setup
serving-compat-setup: $(SERVING_COMPAT_STAMP) ## Create the venv with the TensorFlow that the pinned TF Serving is built for, pinned by requirements/serving-compat-constraints.txt

$(SERVING_COMPAT_STAMP): $(SERVING_COMPAT_CONSTRAINTS)
	$(call tool_venv,serving-compat,$(SERVING_COMPAT_VENV),$(SERVING_COMPAT_CONSTRAINTS),tensorflow-cpu)

# make test exports with this repository's TensorFlow and loads the result there.
test test-model-exporter: $(SERVING_COMPAT_STAMP)

.PHONY: check-serving-runtime
check-serving-runtime: $(SETUP_STAMP) $(SERVING_COMPAT_STAMP) ## Load the newest version in MODEL_BASE_PATH with the TensorFlow of the pinned TF Serving (ops, versions, signatures)
	$(call require_model_version)
	@newest="$$($(VENV_PY) -c 'import sys; from mnist_common.pipeline import published_versions; print(published_versions(sys.argv[1])[-1])' "$(MODEL_BASE_PATH)")"; \
	 TF_CPP_MIN_LOG_LEVEL=3 $(SERVING_COMPAT_PYTHON) $(SERVING_RUNTIME_CHECK) "$(MODEL_BASE_PATH)/$$newest" || \
	  { echo "error: version $$newest of $(MODEL_BASE_PATH) would not load in $(SERVING_IMAGE) (the line above says why)" >&2; exit 1; }

.PHONY: bench-serving
bench-serving: $(SETUP_STAMP) $(KSERVE_STAMP) ## Stand-in predict req/s, p50/p99 (REST, gRPC; concurrency 1/16/64) vs KServe, naive Flask and in-process; artifacts/bench/serving.json
	@TF_CPP_MIN_LOG_LEVEL=3 $(VENV_BIN)/mnist-bench serving --model-base-path "$(MODEL_BASE_PATH)" --data-dir "$(DATA_DIR)" \
	  --config-dir $(SERVING_CONFIG_DIR) --kserve-python $(KSERVE_VENV)/bin/python \
	  --seconds $(BENCH_SERVING_SECONDS) --concurrency $(BENCH_SERVING_CONCURRENCY) \
	  $(if $(wildcard $(TRAIN_DIR)/model.keras),--keras-model "$(TRAIN_DIR)/model.keras") \
	  --out "$(ARTIFACTS)/bench/serving.json"
