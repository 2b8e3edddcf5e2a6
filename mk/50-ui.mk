##@ Web UI

# grpc (default) or rest: how the web UI talks to the model server.
SERVING_PROTOCOL ?= grpc
# gunicorn workers (uvicorn event loop each) x threads that run the app; the defaults suit a small machine.
WEB_WORKERS ?= 2
WEB_THREADS ?= 8

.PHONY: ui
ui: $(SETUP_STAMP) ## Web UI under gunicorn in the foreground on UI_PORT, talking to the model server (SERVING_PROTOCOL=grpc|rest)
	@$(VENV_BIN)/mnist-run check-ports --command "make ui" UI_PORT=$(UI_PORT)
	@test -f "$(DATA_DIR)/manifest.json" || \
	  echo "warning: no held-out digits in $(DATA_DIR) (run 'make data'); drawing and uploads still work" >&2
	$(warn_if_open)
	@echo "ui: http://$(HOST):$(UI_PORT)/ -> model '$(MODEL_NAME)' over $(SERVING_PROTOCOL) (gRPC localhost:$(GRPC_PORT), REST localhost:$(REST_PORT)); start it with 'make run' or tfserving-standin"
	@HOST="$(HOST)" DATA_DIR="$(DATA_DIR)" ROLLOUT_FILE="$(if $(filter rollout,$(VERSION_POLICY)),$(ROLLOUT_FILE))" SERVING_PROTOCOL="$(SERVING_PROTOCOL)" WEB_WORKERS="$(WEB_WORKERS)" WEB_THREADS="$(WEB_THREADS)" \
	  exec $(VENV_BIN)/gunicorn -c python:mnist_webui.gunicorn_conf "mnist_webui:create_app()"
