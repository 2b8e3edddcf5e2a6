##@ Web UI

# grpc (default) or rest: how the web UI talks to the model server.
SERVING_PROTOCOL ?= grpc
# gunicorn workers (uvicorn event loop each) x threads that run the app; the defaults suit a small machine.
WEB_WORKERS ?= 2
WEB_THREADS ?= 16
# Your own model server (docs/serving-contract.md): SERVING_GRPC_ADDRESS=host:port, or with
# SERVING_PROTOCOL=rest SERVING_REST_URL=http://host:port. Empty: the local one on GRPC_PORT / REST_PORT.
SERVING_GRPC_ADDRESS ?=
SERVING_REST_URL ?=
ui_grpc_address = $(or $(SERVING_GRPC_ADDRESS),localhost:$(GRPC_PORT))
ui_rest_url = $(or $(SERVING_REST_URL),http://localhost:$(REST_PORT))
ui_serving_address = $(if $(filter rest,$(SERVING_PROTOCOL)),$(ui_rest_url),$(ui_grpc_address))
ui_serving_given = $(if $(filter rest,$(SERVING_PROTOCOL)),$(SERVING_REST_URL),$(SERVING_GRPC_ADDRESS))

.PHONY: ui
ui: $(SETUP_STAMP) ## Web UI under gunicorn in the foreground on UI_PORT, talking to the local model server or SERVING_GRPC_ADDRESS (SERVING_PROTOCOL=rest: SERVING_REST_URL)
	@$(VENV_BIN)/mnist-run check-ports --command "make ui" UI_PORT=$(UI_PORT)
	@test -f "$(DATA_DIR)/manifest.json" || \
	  echo "warning: no held-out digits in $(DATA_DIR) (run 'make data'); drawing and uploads still work" >&2
	$(warn_if_open)
	@echo "ui: http://$(HOST):$(UI_PORT)/ -> model '$(MODEL_NAME)' over $(SERVING_PROTOCOL) at $(ui_serving_address)$(if $(ui_serving_given)$(RUN_STACK),,; start the local model server with 'make serve' (or everything with 'make run'))"
	@HOST="$(HOST)" DATA_DIR="$(DATA_DIR)" MODEL_BASE_PATH="$(MODEL_BASE_PATH)" ROLLOUT_POLICY_FILE="$(ROLLOUT_POLICY)" ROLLOUT_FILE="$(if $(filter rollout,$(VERSION_POLICY)),$(ROLLOUT_FILE))" SERVING_PROTOCOL="$(SERVING_PROTOCOL)" WEB_WORKERS="$(WEB_WORKERS)" WEB_THREADS="$(WEB_THREADS)" \
	  SERVING_GRPC_ADDRESS="$(ui_grpc_address)" SERVING_REST_URL="$(ui_rest_url)" \
	  exec $(VENV_BIN)/mnist-run foreground -- $(VENV_BIN)/gunicorn -c python:mnist_webui.gunicorn_conf "mnist_webui:create_app()"
