##@ Rollout (stable and canary model versions)

# rollout: the model server loads the stable and the canary version, named by the labels
# `stable` and `canary`, and the web UI sends CANARY_PERCENT of its predicts to the canary.
# latest: the newest published version takes all traffic as soon as it loads (no labels).
VERSION_POLICY ?= rollout
ROLLOUT_FILE ?= $(ARTIFACTS)/rollout.json
# Rendered from ROLLOUT_FILE; the model server re-reads it every POLL_SECONDS.
MODEL_CONFIG_FILE ?= $(ARTIFACTS)/models.config
# The share a newly published version gets as the canary (make export / retrain, make deploy's
# export); empty: the rollout's default (mnist_common.rollout.transitions.DEFAULT_CANARY_PERCENT, 10).
CANARY_PERCENT ?=
# make canary: VERSION (default the newest published) at PERCENT (default CANARY_PERCENT).
VERSION ?=
PERCENT ?= $(CANARY_PERCENT)
percent_flag = $(if $(1),--percent "$(1)")
# make promote: the guard's margins; FORCE=1 promotes a canary the guard refuses.
ROLLOUT_POLICY ?= loadtest/rollout.yaml
FORCE ?=

# On a cluster (OVERLAY given on the command line or in the environment, or KUBE_CONTEXT set):
# the state is the ConfigMap model-rollout, changed by server-side apply (tools/mnist_rollout).
rollout_on_cluster = $(or $(KUBE_CONTEXT),$(filter command line environment,$(origin OVERLAY)))
ROLLOUT_CLUSTER = $(VENV_PY) -m mnist_rollout --cluster $(if $(KUBE_CONTEXT),--context "$(KUBE_CONTEXT)",) \
  --policy-file "$(ROLLOUT_POLICY)"
ROLLOUT = $(VENV_PY) -m mnist_rollout --state-file "$(ROLLOUT_FILE)" --model-config-file "$(MODEL_CONFIG_FILE)" \
  --model-base-path "$(MODEL_BASE_PATH)" --model-name "$(MODEL_NAME)" --rest-url http://127.0.0.1:$(REST_PORT) \
  --metrics-url http://127.0.0.1:$(UI_PORT)/metrics --policy-file "$(ROLLOUT_POLICY)"
# make canary / promote / rollback / rollout-status: the cluster's or the local stack's state.
ROLLOUT_TARGET = $(if $(rollout_on_cluster),$(ROLLOUT_CLUSTER),$(ROLLOUT))

.PHONY: canary
canary: $(SETUP_STAMP) ## Make VERSION (default the newest published) the canary at PERCENT % of the web UI's predicts
	@$(ROLLOUT_TARGET) canary --model-version "$(VERSION)" $(call percent_flag,$(PERCENT))

.PHONY: promote
promote: $(SETUP_STAMP) ## The canary becomes stable at 100 % (refused when worse than stable beyond ROLLOUT_POLICY; FORCE=1)
	@$(ROLLOUT_TARGET) promote --force "$(FORCE)"

.PHONY: rollback
rollback: $(SETUP_STAMP) ## Drop the canary at once; without one, back to the stable before the last promote
	@$(ROLLOUT_TARGET) rollback

.PHONY: rollout-status
rollout-status: $(SETUP_STAMP) ## Stable, canary, share, and per version: requests, error rate, p50/p95, mean confidence
	@$(ROLLOUT_TARGET) status
