"""`mnist-train`: the command line around mnist_trainer.train.

Exit status: 0 trained; 2 bad arguments, TF_CONFIG or data (with a message naming the flag,
variable or file); 143 terminated by SIGTERM (rerun the same command to resume); 1 otherwise.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence

from mnist_common import logs, storage
from mnist_common.dataset import DatasetError
from mnist_common.idx import IdxFormatError
from mnist_common.quiet_start import quiet_tensorflow
from mnist_trainer.config import PROG, parse_config
from mnist_trainer.stopping import StopOnSignal, Terminated
from mnist_trainer.tf_config import TfConfigError, parse_tf_config

EXIT_BAD_INPUT = 2
EXIT_TERMINATED = 128 + signal.SIGTERM


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    return status


def _is_file(path: str) -> bool:
    return storage.exists(path) and not storage.isdir(path)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv)  # exits 2 itself, with usage, on a bad flag or variable
    try:
        logs.configure("mnist-train")  # log records; the progress lines stay plain on stdout
    except logs.LogFormatError as error:
        return _fail(str(error), EXIT_BAD_INPUT)
    try:
        role = parse_tf_config(os.environ.get("TF_CONFIG"))
    except TfConfigError as error:
        return _fail(str(error), EXIT_BAD_INPUT)
    if _is_file(config.model_dir):
        return _fail(f"--model-dir {config.model_dir} is a file, not a folder", EXIT_BAD_INPUT)

    stop = StopOnSignal(signal.SIGTERM)  # before TensorFlow loads: a SIGTERM then still stops cleanly
    quiet_tensorflow()  # TensorFlow's start-up lines and absl's per-epoch ones off, unless VERBOSE=1
    from mnist_trainer.train import train  # imports TensorFlow: after the cheap checks

    try:
        train(config, role, check_stop=stop.check)
    except (IdxFormatError, DatasetError) as error:
        return _fail(str(error), EXIT_BAD_INPUT)
    except FileNotFoundError as error:
        return _fail(f"{error.filename or error}: no such file; run 'make data' first?", EXIT_BAD_INPUT)
    except Terminated:
        return _fail(
            "terminated by SIGTERM; rerun the same command to resume from the last completed epoch", EXIT_TERMINATED
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
