"""Orchestration of the local system: `make run`, `make retrain` and `make loadtest`'s checks.

ports     checks, before anything starts, that every port is free
inputs    the training inputs `make run` wants (the reuse decision itself is mnist_common.pipeline)
procfile  starts the Procfile's services (honcho) as one process group, and stops them all
announce  the Procfile entry that waits for the web UI and prints the URL to open
cli       `mnist-run check-ports|warn-not-listening|plan|announce`
"""
