##@ Training

# mnist-train reads EPOCHS, BATCH_SIZE, LEARNING_RATE, SEED and TRAIN_LIMIT from the environment;
# make passes variables given on its command line (make train EPOCHS=3) through to it.
BENCH_TRAIN_DIR ?= $(ARTIFACTS)/bench-train
# make bench-train: cross-validation folds after the default run (0: only the default run; 1 is refused).
BENCH_FOLDS ?= 5
TENSORBOARD_PORT ?= 6006
# What "the defaults" means for the benchmark: none of the trainer's variables may leak in.
TRAINER_VARIABLES := TF_CONFIG EPOCHS BATCH_SIZE LEARNING_RATE SEED TRAIN_LIMIT

.PHONY: train
train: data ## Train the CNN into TRAIN_DIR; resumes if interrupted, no-op if inputs unchanged (EPOCHS= SEED= ...)
	$(VENV_BIN)/mnist-train --data-dir $(DATA_DIR) --model-dir $(TRAIN_DIR)

.PHONY: bench-train
bench-train: data ## Train from scratch with the defaults (held-out accuracy, seconds: needs >= 99%, <= 60 s), then BENCH_FOLDS-fold cross-validation over every digit
	rm -rf $(BENCH_TRAIN_DIR)
	env $(addprefix -u ,$(TRAINER_VARIABLES)) $(VENV_BIN)/mnist-bench train --data-dir $(DATA_DIR) --model-dir $(BENCH_TRAIN_DIR) \
	  --folds $(BENCH_FOLDS)

.PHONY: tensorboard
tensorboard: $(SETUP_STAMP) ## TensorBoard for TRAIN_DIR/logs on 127.0.0.1:TENSORBOARD_PORT (6006); also before training: runs appear as make train writes them
	@$(VENV_BIN)/mnist-run check-ports --command "make tensorboard" TENSORBOARD_PORT=$(TENSORBOARD_PORT)
	@case "$(TRAIN_DIR)" in *://*) ;; *) test -d "$(TRAIN_DIR)/logs" || { mkdir -p "$(TRAIN_DIR)/logs"; \
	  echo "tensorboard: no training logs in $(TRAIN_DIR)/logs yet: run 'make train' in another terminal; its runs appear here as they are written" >&2; } ;; esac
	$(VENV_BIN)/tensorboard --logdir $(TRAIN_DIR)/logs --host 127.0.0.1 --port $(TENSORBOARD_PORT)

.PHONY: test-trainer
test-trainer: data ## Run the trainer's tests (tests/trainer)
	$(VENV_PY) -m pytest tests/trainer -q
