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
# Images are tagged by their content (mnist_deploy.content_tags: a hash of the Dockerfile and the
# files it copies), so a commit that changes only the web UI changes only its tag and the rendered
# data/train/export Jobs stay the same. IMAGE_TAG=... tags all three with one name instead. One
# rule for make and Cloud Build: .ci/cloudbuild.yaml asks `make image-tags`.
IMAGE_TAG ?=
# The commit the images are built from (recorded in each image and its model cards).
GIT_COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
# Computed once per make run, on first use, by the standard library alone (no .venv needed);
# CONTENT_TAGS='name=tag ...' on the command line hands in tags computed before (Cloud Build).
CONTENT_TAGS = $(eval CONTENT_TAGS := $$(shell PYTHONPATH=tools/mnist_deploy/src $(PYTHON) -m mnist_deploy.content_tags))$(CONTENT_TAGS)
image_tag = $(or $(IMAGE_TAG),$(patsubst $(1)=%,%,$(filter $(1)=%,$(CONTENT_TAGS))))
IMAGE_PLATFORM ?= linux/amd64
# Debian's docker.io CLI where it is installed (it builds with BuildKit without the buildx plugin;
# a newer CLI without buildx refuses DOCKER_BUILDKIT=1), else the docker on PATH.
DOCKER ?= $(if $(wildcard /usr/bin/docker),/usr/bin/docker,docker)
# The images' Python base: empty builds FROM the Dockerfiles' pinned python:3.11-slim (from Docker
# Hub); where no registry answers, `make base-image` makes $(BASE_IMAGE) from Debian packages and
# PYTHON_IMAGE=$(BASE_IMAGE) builds on it.
PYTHON_IMAGE ?=
BASE_IMAGE ?= mnist-python-base:3.11-bookworm
# image name = directory under services/ that holds its Dockerfile
IMAGES := mnist-trainer=trainer mnist-model-exporter=model-exporter mnist-web-ui=web-ui
# Which images make images / push / kind-load / run-containers' check handle (default: all three),
# e.g. IMAGE_NAMES=mnist-web-ui after a web-UI-only change.
IMAGE_NAMES ?= $(foreach pair,$(IMAGES),$(firstword $(subst =, ,$(pair))))
# For shell loops: one word per selected image, NAME=DIR=TAG; `$(read_image_row)` splits $$row
# into $$name, $$dir and $$tag.
IMAGE_ROWS = $(foreach pair,$(IMAGES),$(if $(filter $(firstword $(subst =, ,$(pair))),$(IMAGE_NAMES)),$(pair)=$(call image_tag,$(firstword $(subst =, ,$(pair))))))
read_image_row = IFS== read -r name dir tag <<<"$$row"

# Rendering and deploying. OVERLAY is a directory under kustomize/overlays (local or gke).
OVERLAY ?= local
KUBE_CONTEXT ?=
GCS_BUCKET ?= $(if $(PROJECT_ID),$(PROJECT_ID)-mnist,)
DOMAIN ?=
STATIC_IP_NAME ?= mnist-web-ui
KIND_CLUSTER ?= kind
KIND ?= kind
DELETE_STORAGE ?=
# Stage timeouts for `make deploy`, as STAGE=SECONDS pairs (stages: setup data training export
# serving), e.g. DEPLOY_TIMEOUTS="training=10800 serving=600"; empty keeps mnist-deploy's defaults.
DEPLOY_TIMEOUTS ?=
# Any other `mnist-deploy deploy` flags, e.g. DEPLOY_FLAGS="--give-up-after 600 --lease-seconds 120".
DEPLOY_FLAGS ?=
# TRAIN=force: run data, training and export again although their spec is the one that last ran
# (by default they run only when their images or parameters changed).
TRAIN ?=
RENDER_DIR := $(ARTIFACTS)/deploy
MANIFESTS := $(RENDER_DIR)/$(OVERLAY).yaml

image_ref = $(REGISTRY)/$(1):$(call image_tag,$(1))
context_flag = $(if $(KUBE_CONTEXT),--context $(KUBE_CONTEXT),)

.PHONY: _need-docker _need-tag
_need-docker:
	@command -v $(DOCKER) >/dev/null || { echo "error: '$(DOCKER)' not found: install Docker (https://docs.docker.com/engine/install/) or set DOCKER=podman" >&2; exit 2; }
	@$(DOCKER) info >/dev/null 2>&1 || { echo "error: '$(DOCKER)' cannot reach a Docker engine: start it (or check DOCKER_HOST / your permissions)" >&2; exit 2; }
_need-tag:
	@test -z "$(filter-out $(foreach pair,$(IMAGES),$(firstword $(subst =, ,$(pair)))),$(IMAGE_NAMES))" || { echo "error: IMAGE_NAMES: no image $(filter-out $(foreach pair,$(IMAGES),$(firstword $(subst =, ,$(pair)))),$(IMAGE_NAMES)); the images are $(foreach pair,$(IMAGES),$(firstword $(subst =, ,$(pair))))" >&2; exit 2; }
	@test -n "$(call image_tag,mnist-web-ui)" || { echo "error: no content tag for the images (not a git work tree?): set IMAGE_TAG=..." >&2; exit 2; }

.PHONY: image-tags
image-tags: ## Print each image's tag (name=tag, one a line): its content hash, or IMAGE_TAG for all
	@$(foreach pair,$(IMAGES),echo '$(firstword $(subst =, ,$(pair)))=$(call image_tag,$(firstword $(subst =, ,$(pair))))';)

.PHONY: images
images: _need-docker _need-tag ## Build the trainer, exporter and web-UI images, each tagged by its content (or IMAGE_TAG); PYTHON_IMAGE=... for another base
	@for row in $(IMAGE_ROWS); do \
	  $(read_image_row); started=$$(date +%s); \
	  echo "== building $(REGISTRY)/$$name:$$tag (services/$$dir/Dockerfile)"; \
	  DOCKER_BUILDKIT=1 $(DOCKER) build --platform $(IMAGE_PLATFORM) \
	    --build-arg GIT_COMMIT=$(GIT_COMMIT) --build-arg CONTENT_TAG=$$tag \
	    $(if $(PYTHON_IMAGE),--build-arg PYTHON_IMAGE=$(PYTHON_IMAGE)) \
	    -f services/$$dir/Dockerfile -t $(REGISTRY)/$$name:$$tag . || \
	    { echo "error: the image $$name did not build (services/$$dir/Dockerfile; output above)$(if $(PYTHON_IMAGE),,. Without a registry: make base-image then PYTHON_IMAGE=$(BASE_IMAGE))" >&2; exit 1; }; \
	  echo "== built $(REGISTRY)/$$name:$$tag in $$(( $$(date +%s) - started )) s"; \
	done

.PHONY: base-image
base-image: ## Make the Python base image BASE_IMAGE from Debian packages (debootstrap; root), for hosts without a registry
	DOCKER=$(DOCKER) tools/base-image/build.sh $(BASE_IMAGE)

# make run-containers: the local stack from the built images, as they ship. Data comes from
# make data; training and export run in the trainer and exporter images when MODEL_BASE_PATH
# holds no version yet; then the model server (SERVING_IMAGE: tensorflow/serving, or any image
# whose tensorflow_model_server takes TF Serving's flags) and the web UI image. Every container
# runs as you (files stay yours; as root, as the images' user 10001), with a read-only root file
# system and no capabilities.
# As root, the images' own user 10001 instead (a container never runs as root), owning what it writes.
CONTAINERS_NETWORK := mnist-containers
CONTAINER_USER = $(shell if [ "$$(id -u)" = 0 ]; then echo 10001:10001; else echo "$$(id -u):$$(id -g)"; fi)
container_flags = --rm --user $(CONTAINER_USER) --read-only --tmpfs /tmp --cap-drop ALL \
  --security-opt no-new-privileges --network $(CONTAINERS_NETWORK)
image_of = $(REGISTRY)/$(1):$(call image_tag,$(1))

.PHONY: run-containers
run-containers: _need-docker _need-tag data ## The local stack from the built images (make images): train/export in their images if no version yet, then SERVING_IMAGE + the web UI image
	@for row in $(IMAGE_ROWS); do $(read_image_row); \
	  $(DOCKER) image inspect $(REGISTRY)/$$name:$$tag >/dev/null 2>&1 || { echo "error: $(REGISTRY)/$$name:$$tag is not built: run 'make images' first" >&2; exit 2; }; done
	$(warn_if_open)
	@$(DOCKER) network inspect $(CONTAINERS_NETWORK) >/dev/null 2>&1 || $(DOCKER) network create $(CONTAINERS_NETWORK) >/dev/null
	@mkdir -p "$(TRAIN_DIR)" "$(MODEL_BASE_PATH)"
	@[ "$$(id -u)" != 0 ] || chown -R $(CONTAINER_USER) "$(TRAIN_DIR)" "$(MODEL_BASE_PATH)"
	@if ! ls "$(MODEL_BASE_PATH)" | grep -qE '^[0-9]+$$'; then \
	  echo "run-containers: no version in $(MODEL_BASE_PATH): training and exporting in the images"; \
	  $(DOCKER) run $(container_flags) -v "$(abspath $(DATA_DIR))":/mnt/storage/data/mnist:ro \
	    -v "$(abspath $(TRAIN_DIR))":/mnt/storage/training $(call image_of,mnist-trainer) \
	    mnist-train --data-dir=/mnt/storage/data/mnist --model-dir=/mnt/storage/training $(PLAN_TRAIN_FLAGS) && \
	  $(DOCKER) run $(container_flags) -v "$(abspath $(DATA_DIR))":/mnt/storage/data/mnist:ro \
	    -v "$(abspath $(TRAIN_DIR))":/mnt/storage/training:ro -v "$(abspath $(MODEL_BASE_PATH))":/mnt/storage/models/mnist \
	    $(call image_of,mnist-model-exporter) mnist-export --train-dir=/mnt/storage/training \
	    --data-dir=/mnt/storage/data/mnist --model-base-path=/mnt/storage/models/mnist $(EXPORT_FLAGS); fi
	@echo "run-containers: $(SERVING_IMAGE) (gRPC $(HOST):$(GRPC_PORT), REST $(HOST):$(REST_PORT)) and $(call image_of,mnist-web-ui) (http://$(HOST):$(UI_PORT)); Ctrl-C stops both"
	@trap '$(DOCKER) rm -f mnist-containers-tf-serving >/dev/null 2>&1; $(DOCKER) network rm $(CONTAINERS_NETWORK) >/dev/null 2>&1 || true' EXIT INT TERM; \
	 $(DOCKER) run -d $(container_flags) --name mnist-containers-tf-serving --network-alias tf-serving \
	  -p $(HOST):$(GRPC_PORT):8500 -p $(HOST):$(REST_PORT):8501 \
	  -v "$(abspath $(MODEL_BASE_PATH))":/models/mnist:ro -v "$(abspath $(SERVING_CONFIG_DIR))":/etc/tf-serving:ro \
	  --entrypoint tensorflow_model_server $(SERVING_IMAGE) \
	  --port=8500 --rest_api_port=8501 --model_config_file=/etc/tf-serving/models.config \
	  --monitoring_config_file=/etc/tf-serving/monitoring.config \
	  --enable_batching=true --batching_parameters_file=/etc/tf-serving/batching_parameters.txt \
	  --file_system_poll_wait_seconds=$(POLL_SECONDS) >/dev/null; \
	 $(DOCKER) run $(container_flags) --init --name mnist-containers-web-ui -p $(HOST):$(UI_PORT):8080 \
	  -e MODEL_NAME=$(MODEL_NAME) -e SERVING_GRPC_ADDRESS=tf-serving:8500 -e SERVING_REST_URL=http://tf-serving:8501 \
	  -e DATA_DIR=/mnt/storage/data/mnist -v "$(abspath $(DATA_DIR))":/mnt/storage/data/mnist:ro \
	  $(call image_of,mnist-web-ui)

.PHONY: push
push: _need-docker _need-tag ## Push the images to REGISTRY (default: Artifact Registry of PROJECT_ID in REGION)
	@test "$(REGISTRY)" != "$(LOCAL_REGISTRY)" || { echo "error: nowhere to push: set PROJECT_ID (Artifact Registry $(REGION)-docker.pkg.dev/PROJECT_ID/mnist) or REGISTRY=host/path" >&2; exit 2; }
	@for row in $(IMAGE_ROWS); do \
	  $(read_image_row); \
	  $(DOCKER) image inspect $(REGISTRY)/$$name:$$tag >/dev/null 2>&1 || { echo "error: $(REGISTRY)/$$name:$$tag is not built: run 'make images' first" >&2; exit 2; }; \
	  $(DOCKER) push $(REGISTRY)/$$name:$$tag || { echo "error: pushing $(REGISTRY)/$$name:$$tag failed" >&2; $(push_hint); exit 1; }; \
	done

# Said when a push fails: the usual cause with Artifact Registry is Docker not being logged in.
push_hint = case "$(REGISTRY)" in *-docker.pkg.dev/*) \
	  if command -v gcloud >/dev/null; then echo "hint: log Docker in to Artifact Registry: gcloud auth configure-docker $(firstword $(subst /, ,$(REGISTRY)))" >&2; \
	  else echo "hint: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install), then: gcloud auth configure-docker $(firstword $(subst /, ,$(REGISTRY)))" >&2; fi;; esac

GKE_CLUSTER ?= mnist
# make gke-up/gke-down: DRY_RUN=1 prints every command without running any (no gcloud needed);
# IAP_MEMBERS (e.g. user:me@example.com group:team@example.com) may sign in through IAP.
# GKE_MACHINE_TYPE and GKE_NODES_PER_ZONE size the cluster (empty: mnist_deploy.bootstrap's
# defaults; what they cost: kustomize/README.md).
DRY_RUN ?=
IAP_MEMBERS ?=
GKE_MACHINE_TYPE ?=
GKE_NODES_PER_ZONE ?=
gke_bootstrap = $(VENV_PY) -m mnist_deploy.bootstrap $(1) --project "$(PROJECT_ID)" --region $(REGION) \
	  --cluster $(GKE_CLUSTER) --bucket "$(GCS_BUCKET)" --static-ip-name $(STATIC_IP_NAME) \
	  $(if $(GKE_MACHINE_TYPE),--machine-type $(GKE_MACHINE_TYPE),) $(if $(GKE_NODES_PER_ZONE),--nodes-per-zone $(GKE_NODES_PER_ZONE),) \
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

# IAP's audience for the web UI's own check of IAP's signed header: the backend service the
# Ingress created, known only after the first deploy. Writes it into the ConfigMap web-ui-iap
# and restarts the web UI so it reads it (the iap-ingress component refuses requests until then).
.PHONY: iap-audience
iap-audience: ## After the first GKE deploy: give the web UI its IAP audience (ConfigMap web-ui-iap); DRY_RUN=1 prints
	@test -n "$(PROJECT_ID)" || { echo "error: set PROJECT_ID=your-project" >&2; exit 2; }
	@$(if $(DRY_RUN),,command -v gcloud >/dev/null || { echo "error: 'gcloud' not found: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)" >&2; exit 2; };) \
	 run() { echo "+ $$*"; $(if $(DRY_RUN),:,"$$@"); }; \
	 number=$$($(if $(DRY_RUN),echo PROJECT_NUMBER,gcloud projects describe $(PROJECT_ID) --format='value(projectNumber)')); \
	 id=$$($(if $(DRY_RUN),echo BACKEND_SERVICE_ID,gcloud compute backend-services list --project $(PROJECT_ID) --filter='name~-mnist-web-ui-' --format='value(id)' | head -n 1)); \
	 test -n "$$id" || { echo "error: no backend service for the web UI yet: deploy with OVERLAY=gke first and wait for the Ingress" >&2; exit 1; }; \
	 audience="/projects/$$number/global/backendServices/$$id"; echo "IAP audience: $$audience"; \
	 mkdir -p $(ARTIFACTS); printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-ui-iap\n  namespace: mnist\ndata:\n  audience: "%s"\n' "$$audience" > $(ARTIFACTS)/web-ui-iap.yaml; \
	 run $(VENV_BIN)/kubectl $(context_flag) --namespace mnist apply --server-side -f $(ARTIFACTS)/web-ui-iap.yaml; \
	 run $(VENV_BIN)/kubectl $(context_flag) --namespace mnist rollout restart deployment/web-ui

.PHONY: kind-load
kind-load: _need-tag ## Load the built images into the kind cluster KIND_CLUSTER (for OVERLAY=local)
	@command -v $(KIND) >/dev/null || { echo "error: '$(KIND)' not found: install it (https://kind.sigs.k8s.io/docs/user/quick-start/)" >&2; exit 2; }
	@for row in $(IMAGE_ROWS); do \
	  $(read_image_row); \
	  $(KIND) load docker-image --name $(KIND_CLUSTER) $(REGISTRY)/$$name:$$tag || { echo "error: loading $(REGISTRY)/$$name:$$tag into kind cluster $(KIND_CLUSTER) failed (built? run 'make images')" >&2; exit 1; }; \
	done

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
	@$(VENV_BIN)/mnist-deploy deploy --manifests $(MANIFESTS) $(context_flag) $(if $(CANARY_PERCENT),--canary-percent "$(CANARY_PERCENT)") \
	  $(foreach pair,$(DEPLOY_TIMEOUTS),--timeout $(pair)) $(if $(filter force,$(TRAIN)),--rerun-jobs) $(DEPLOY_FLAGS)

.PHONY: status
status: render ## Show every object of OVERLAY in the cluster and whether it is ready
	@$(VENV_BIN)/mnist-deploy status --manifests $(MANIFESTS) $(context_flag)

.PHONY: undeploy
undeploy: render ## Delete OVERLAY from the cluster; storage kept unless DELETE_STORAGE=1
	@$(VENV_BIN)/mnist-deploy undeploy --manifests $(MANIFESTS) $(context_flag) $(if $(DELETE_STORAGE),--delete-storage,)

.PHONY: lint-dockerfiles
lint-dockerfiles: $(SETUP_STAMP) ## Lint the three Dockerfiles with hadolint (also part of make test)
	$(VENV_BIN)/hadolint $(foreach pair,$(IMAGES),services/$(lastword $(subst =, ,$(pair)))/Dockerfile)
