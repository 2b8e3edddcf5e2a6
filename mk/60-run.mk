##@ Run, load-test, benchmark

# How often the model server looks for a new version under MODEL_BASE_PATH (seconds).
POLL_SECONDS ?= 2
# make loadtest: locust against the running stack (make run in another terminal).
USERS ?= 10
SPAWN_RATE ?= 5
DURATION ?= 60s
# Empty: each user class targets the local stack on UI_PORT / REST_PORT / GRPC_PORT.
TARGET ?=
LOCUST_CLASSES ?= WebUIUser ServingRestUser ServingGrpcUser
LOCUST_TAGS ?=
SLO_FILE ?= loadtest/slo.yaml
LOCUSTFILE := loadtest/locustfile.py
# make bench: the web UI's predict path.
BENCH_USERS ?= 50
BENCH_DURATION ?= 40s
# The offered load (requests/s, Poisson arrivals spread over the users); 0: each user goes flat
# out. 10 % above the 300 requests/s target, so that what is served is measured with margin.
BENCH_RPS ?= 330

RUN_PORTS = GRPC_PORT=$(GRPC_PORT) REST_PORT=$(REST_PORT) UI_PORT=$(UI_PORT)
# The training inputs `make train` would use, as mnist-train flags: those set in make (here, in
# mk/20-train.mk or on the command line); the rest mnist-train resolves itself, from its
# environment variables and defaults, exactly as a training run would.
PLAN_TRAIN_FLAGS = $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(BATCH_SIZE),--batch-size $(BATCH_SIZE)) \
  $(if $(LEARNING_RATE),--learning-rate $(LEARNING_RATE)) $(if $(SEED),--seed $(SEED)) \
  $(if $(TRAIN_LIMIT),--limit $(TRAIN_LIMIT))
# RUN_STACK: make ui then knows the model server starts beside it (no hint to start one).
RUN_ENV = RUN_STACK=1 PATH="$(abspath $(VENV_BIN)):$$PATH" ARTIFACTS="$(ARTIFACTS)" VERSION_POLICY="$(VERSION_POLICY)" ROLLOUT_FILE="$(ROLLOUT_FILE)" MODEL_CONFIG_FILE="$(MODEL_CONFIG_FILE)" MODEL_BASE_PATH="$(MODEL_BASE_PATH)" DATA_DIR="$(DATA_DIR)" POLL_SECONDS="$(POLL_SECONDS)"

.PHONY: run
run: $(SETUP_STAMP) ## Data, training and export when their inputs changed, then model server + web UI (Ctrl-C stops)
	@$(VENV_BIN)/mnist-run check-ports $(RUN_PORTS)
	@$(MAKE) data
	@action=$$($(VENV_BIN)/mnist-run plan --data-dir "$(DATA_DIR)" --train-dir "$(TRAIN_DIR)" \
	   --model-base-path "$(MODEL_BASE_PATH)" $(PLAN_TRAIN_FLAGS)); \
	 case "$$action" in \
	   reuse) ;; \
	   export) $(MAKE) export ;; \
	   train) $(MAKE) train && $(MAKE) export ;; \
	   *) exit 2 ;; \
	 esac
	@$(VENV_BIN)/mnist-run check-ports $(RUN_PORTS)
	$(warn_if_open)
	@echo "run: starting the model server (gRPC $(HOST):$(GRPC_PORT), REST $(HOST):$(REST_PORT)) and the web UI ($(HOST):$(UI_PORT)); Ctrl-C stops both"
	@$(RUN_ENV) exec $(VENV_BIN)/mnist-run foreground -- $(VENV_BIN)/honcho -f Procfile start

# mnist-train does nothing when TRAIN_DIR already holds a run with the same inputs, so retrain
# clears it first; published versions keep their own copy of the model, only the run's
# checkpoints and TensorBoard logs go.
.PHONY: retrain
retrain: $(SETUP_STAMP) ## Train from scratch and publish a new version even if not better (a running make run switches to it)
	@case "$(TRAIN_DIR)" in *://*) echo "error: make retrain clears TRAIN_DIR and needs a local one, not $(TRAIN_DIR)" >&2; exit 2 ;; esac
	rm -rf "$(TRAIN_DIR)"
	@$(MAKE) train
	@$(MAKE) export EXPORT_FLAGS="--force --republish"

.PHONY: loadtest
loadtest: $(SETUP_STAMP) ## Locust, headless, against the running stack; HTML + CSV in artifacts/loadtest/<time>/; fails on a missed SLO
	@dir="$(ARTIFACTS)/loadtest/$$(date +%Y%m%d-%H%M%S)"; mkdir -p "$$dir"; \
	 echo "loadtest: $(USERS) users, spawn rate $(SPAWN_RATE)/s, $(DURATION), classes: $(LOCUST_CLASSES) -> $$dir"; \
	 $(if $(TARGET),,$(VENV_BIN)/mnist-run warn-not-listening $(RUN_PORTS);) \
	 rc=0; DATA_DIR="$(DATA_DIR)" $(VENV_BIN)/locust -f $(LOCUSTFILE) --headless \
	   --users $(USERS) --spawn-rate $(SPAWN_RATE) --run-time $(DURATION) \
	   $(if $(TARGET),--host "$(TARGET)") $(if $(LOCUST_TAGS),--tags $(LOCUST_TAGS)) \
	   --csv "$$dir/locust" --html "$$dir/report.html" --only-summary --exit-code-on-error 0 \
	   $(LOCUST_CLASSES) || rc=$$?; \
	 if [ $$rc -ne 0 ]; then echo "error: locust itself failed (exit $$rc); see above" >&2; exit $$rc; fi; \
	 echo "report: $$dir/report.html, statistics: $$dir/locust_stats.csv"; \
	 $(VENV_BIN)/mnist-loadtest check-slo --slo "$(SLO_FILE)" --html "$$dir/report.html" "$$dir/locust_stats.csv"

.PHONY: bench-model-page
bench-model-page: $(SETUP_STAMP) ## Time the /model page in headless Chromium against the running stack (make run in another terminal); fails above 1 s
	@$(VENV_BIN)/mnist-run warn-not-listening UI_PORT=$(UI_PORT)
	@$(VENV_BIN)/mnist-bench model-page --url http://127.0.0.1:$(UI_PORT) --runs 20

.PHONY: bench
bench: $(SETUP_STAMP) ## Web UI predict path under locust (BENCH_USERS=50): requests/s and p50/p95/p99; writes artifacts/bench/webui.json
	@$(VENV_BIN)/mnist-bench webui --procfile Procfile --locustfile $(LOCUSTFILE) \
	  --model-base-path "$(MODEL_BASE_PATH)" --data-dir "$(DATA_DIR)" --model-name "$(MODEL_NAME)" \
	  --out "$(ARTIFACTS)/bench" --users $(BENCH_USERS) --duration $(BENCH_DURATION) --target-rps $(BENCH_RPS)
