##@ Containers and Kubernetes (GKE, or kind/minikube)

# The deploy settings below (PROJECT_ID, REGION, DOMAIN, GCS_BUCKET, OVERLAY, ...) can live in
# one git-ignored file of NAME=value lines, read by every target: copy deploy.env.example to
# deploy.env. A value on the make command line still wins over the file; the file wins over
# the environment.
DEPLOY_ENV ?= deploy.env
-include $(DEPLOY_ENV)

# Where images go and what they are called. With PROJECT_ID set the default registry is the
# project's Artifact Registry repository "mnist" (create it once: see kustomize/README.md);
# without it, images get a local-only name that kind/minikube can load but nothing can push to.
PROJECT_ID ?=
REGION ?= us-central1
LOCAL_REGISTRY := mnist.local
REGISTRY ?= $(if $(PROJECT_ID),$(REGION)-docker.pkg.dev/$(PROJECT_ID)/mnist,$(LOCAL_REGISTRY))
# Images are tagged with the commit they are built from (never :latest): its first 12 hex
# digits. One rule for make and Cloud Build (.ci/cloudbuild.yaml asks `make image-tag`), not
# `git rev-parse --short`, which grows when 12 digits are ambiguous.
GIT_COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
IMAGE_TAG ?= $(shell printf '%.12s' '$(GIT_COMMIT)')
IMAGE_PLATFORM ?= linux/amd64
DOCKER ?= docker
# image name = directory under services/ that holds its Dockerfile
IMAGES := mnist-trainer=trainer mnist-model-exporter=model-exporter mnist-web-ui=web-ui

# Rendering and deploying. OVERLAY is a directory under kustomize/overlays (local or gke).
OVERLAY ?= local
KUBE_CONTEXT ?=
GCS_BUCKET ?= $(if $(PROJECT_ID),$(PROJECT_ID)-mnist,)
DOMAIN ?=
STATIC_IP_NAME ?= mnist-web-ui
KIND_CLUSTER ?= kind
DELETE_STORAGE ?=
RENDER_DIR := $(ARTIFACTS)/deploy
MANIFESTS := $(RENDER_DIR)/$(OVERLAY).yaml

image_ref = $(REGISTRY)/$(1):$(IMAGE_TAG)
context_flag = $(if $(KUBE_CONTEXT),--context $(KUBE_CONTEXT),)

.PHONY: _need-docker _need-tag
_need-docker:
	@command -v $(DOCKER) >/dev/null || { echo "error: '$(DOCKER)' not found: install Docker (https://docs.docker.com/engine/install/) or set DOCKER=podman" >&2; exit 2; }
	@$(DOCKER) info >/dev/null 2>&1 || { echo "error: '$(DOCKER)' cannot reach a Docker engine: start it (or check DOCKER_HOST / your permissions)" >&2; exit 2; }
_need-tag:
	@test -n "$(IMAGE_TAG)" || { echo "error: no git commit to tag images with: commit first, or set IMAGE_TAG=..." >&2; exit 2; }

.PHONY: image-tag
image-tag: ## Print the tag the images get: IMAGE_TAG, by default the first 12 digits of GIT_COMMIT (HEAD)
	@echo '$(IMAGE_TAG)'

.PHONY: images
images: _need-docker _need-tag ## Build the trainer, exporter and web-UI images, tagged REGISTRY/name:IMAGE_TAG (the git commit)
	@git diff --quiet HEAD 2>/dev/null || echo "warning: uncommitted changes are in these images, but the tag $(IMAGE_TAG) names the commit" >&2
	@for pair in $(IMAGES); do \
	  name=$${pair%%=*}; dir=$${pair#*=}; \
	  echo "== $(call image_ref,$$name)"; \
	  DOCKER_BUILDKIT=1 $(DOCKER) build --platform $(IMAGE_PLATFORM) \
	    --build-arg GIT_COMMIT=$(GIT_COMMIT) \
	    -f services/$$dir/Dockerfile -t $(REGISTRY)/$$name:$(IMAGE_TAG) . ; \
	done

.PHONY: push
push: _need-docker _need-tag ## Push the images to REGISTRY (default: Artifact Registry of PROJECT_ID in REGION)
	@test "$(REGISTRY)" != "$(LOCAL_REGISTRY)" || { echo "error: nowhere to push: set PROJECT_ID (Artifact Registry $(REGION)-docker.pkg.dev/PROJECT_ID/mnist) or REGISTRY=host/path" >&2; exit 2; }
	@for pair in $(IMAGES); do \
	  name=$${pair%%=*}; \
	  $(DOCKER) image inspect $(REGISTRY)/$$name:$(IMAGE_TAG) >/dev/null 2>&1 || { echo "error: $(REGISTRY)/$$name:$(IMAGE_TAG) is not built: run 'make images' first" >&2; exit 2; }; \
	  $(DOCKER) push $(REGISTRY)/$$name:$(IMAGE_TAG) || { $(push_hint); exit 1; }; \
	done

# Said when a push fails: the usual cause with Artifact Registry is Docker not being logged in.
push_hint = case "$(REGISTRY)" in *-docker.pkg.dev/*) \
	  if command -v gcloud >/dev/null; then echo "hint: log Docker in to Artifact Registry: gcloud auth configure-docker $(firstword $(subst /, ,$(REGISTRY)))" >&2; \
	  else echo "hint: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install), then: gcloud auth configure-docker $(firstword $(subst /, ,$(REGISTRY)))" >&2; fi;; esac

GKE_CLUSTER ?= mnist
# make gke-up/gke-down: DRY_RUN=1 prints every command without running any (no gcloud needed);
# IAP_MEMBERS (e.g. user:me@example.com group:team@example.com) may sign in through IAP.
DRY_RUN ?=
IAP_MEMBERS ?=
gke_bootstrap = $(VENV_PY) -m mnist_deploy.bootstrap $(1) --project "$(PROJECT_ID)" --region $(REGION) \
	  --cluster $(GKE_CLUSTER) --bucket "$(GCS_BUCKET)" --static-ip-name $(STATIC_IP_NAME) \
	  --kubectl $(VENV_BIN)/kubectl $(foreach member,$(IAP_MEMBERS),--iap-member $(member)) $(if $(DRY_RUN),--dry-run,)

.PHONY: gke-up gke-down
gke-up: $(SETUP_STAMP) ## One-time GKE setup of PROJECT_ID (APIs, registry, cluster, operator, bucket, accounts, IP); re-runnable; DRY_RUN=1 prints it
	@$(call gke_bootstrap,up)

gke-down: $(SETUP_STAMP) ## Remove what gke-up made; the bucket only with DELETE_STORAGE=1; DRY_RUN=1 prints it
	@$(call gke_bootstrap,down) $(if $(DELETE_STORAGE),--delete-storage,)

.PHONY: gke-credentials
gke-credentials: ## Point kubectl at the GKE cluster GKE_CLUSTER in REGION of PROJECT_ID
	@command -v gcloud >/dev/null || { echo "error: 'gcloud' not found: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)" >&2; exit 2; }
	@test -n "$(PROJECT_ID)" || { echo "error: set PROJECT_ID=your-project" >&2; exit 2; }
	gcloud container clusters get-credentials $(GKE_CLUSTER) --region $(REGION) --project $(PROJECT_ID)

.PHONY: kind-load
kind-load: _need-tag ## Load the built images into the kind cluster KIND_CLUSTER (for OVERLAY=local)
	@command -v kind >/dev/null || { echo "error: 'kind' not found: install it (https://kind.sigs.k8s.io/docs/user/quick-start/)" >&2; exit 2; }
	@for pair in $(IMAGES); do kind load docker-image --name $(KIND_CLUSTER) $(REGISTRY)/$${pair%%=*}:$(IMAGE_TAG); done

.PHONY: render
render: $(SETUP_STAMP) _need-tag ## Write the manifests of OVERLAY (local|gke) to artifacts/deploy/OVERLAY.yaml, images set
	@test -d kustomize/overlays/$(OVERLAY) || { echo "error: no overlay '$(OVERLAY)': use OVERLAY=local or OVERLAY=gke" >&2; exit 2; }
	@test "$(OVERLAY)" != gke -o "$(REGISTRY)" != "$(LOCAL_REGISTRY)" || { echo "error: OVERLAY=gke pulls images from a registry: set PROJECT_ID (or REGISTRY)" >&2; exit 2; }
	@$(VENV_BIN)/mnist-deploy render --overlay kustomize/overlays/$(OVERLAY) --out $(MANIFESTS) \
	  --kubectl $(VENV_BIN)/kubectl \
	  $(foreach pair,$(IMAGES),--image $(firstword $(subst =, ,$(pair)))=$(call image_ref,$(firstword $(subst =, ,$(pair))))) \
	  --set PROJECT_ID=$(PROJECT_ID) --set GCS_BUCKET=$(GCS_BUCKET) \
	  --set DOMAIN=$(DOMAIN) --set STATIC_IP_NAME=$(STATIC_IP_NAME)

.PHONY: deploy
deploy: render ## Apply OVERLAY to the current kubectl context in stages, wait for training, export and rollouts
	@$(VENV_BIN)/mnist-deploy deploy --manifests $(MANIFESTS) $(context_flag)

.PHONY: status
status: render ## Show every object of OVERLAY in the cluster and whether it is ready
	@$(VENV_BIN)/mnist-deploy status --manifests $(MANIFESTS) $(context_flag)

.PHONY: undeploy
undeploy: render ## Delete OVERLAY from the cluster; storage kept unless DELETE_STORAGE=1
	@$(VENV_BIN)/mnist-deploy undeploy --manifests $(MANIFESTS) $(context_flag) $(if $(DELETE_STORAGE),--delete-storage,)

.PHONY: lint-dockerfiles
lint-dockerfiles: $(SETUP_STAMP) ## Lint the three Dockerfiles with hadolint (also part of make test)
	$(VENV_BIN)/hadolint $(foreach pair,$(IMAGES),services/$(lastword $(subst =, ,$(pair)))/Dockerfile)
