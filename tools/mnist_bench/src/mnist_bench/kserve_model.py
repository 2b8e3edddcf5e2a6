"""The KServe reference of `make bench-serving`: KServe's Python model server on the same SavedModel.

What a user picking KServe instead would write: a kserve.Model that loads the SavedModel with
TensorFlow and answers KServe's V1 protocol (`POST /v1/models/mnist:predict` with
`{"instances": ...}`), served by kserve.ModelServer with one worker and its defaults otherwise, except TensorFlow's thread pools:
`make bench-serving` gives it the same intra-/inter-op thread counts as the stand-in runs with
(--tf_intra_op_threads, --tf_inter_op_threads), so the comparison is of the servers, not of
TensorFlow's threading (one thread per op costs a third less CPU per batch here than the
default pools fighting over two cores).
It runs in its own venv (requirements/kserve-constraints.txt, `make kserve-setup`), never in the
repository's: kserve pins packages of its own.

    KSERVE_VENV/bin/python tools/mnist_bench/src/mnist_bench/kserve_model.py --model_dir DIR --http_port PORT \
        --tf_intra_op_threads 1 --tf_inter_op_threads 1
"""

from __future__ import annotations

import argparse
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True, help="a SavedModel version folder")
    parser.add_argument("--model_name", default="mnist")
    # 0: TensorFlow's default pools (sized from the core count), as a plain kserve.Model gets them.
    parser.add_argument("--tf_intra_op_threads", type=int, default=0)
    parser.add_argument("--tf_inter_op_threads", type=int, default=0)
    args, _ = parser.parse_known_args()  # the rest are kserve.ModelServer's own flags

    import kserve
    import numpy as np
    import tensorflow as tf

    # Before TensorFlow runs anything, as the stand-in does (tfserving_standin.server).
    tf.config.threading.set_intra_op_parallelism_threads(args.tf_intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.tf_inter_op_threads)

    class MnistModel(kserve.Model):
        def __init__(self, name: str, model_dir: str):
            super().__init__(name)
            self.model_dir = model_dir
            self.signature = None

        def load(self) -> bool:
            self.signature = tf.saved_model.load(self.model_dir).signatures["serving_default"]
            self.ready = True
            return self.ready

        def predict(self, payload: dict, headers=None) -> dict:
            images = tf.constant(np.asarray(payload["instances"], dtype=np.float32))
            outputs = self.signature(images=images)
            return {"predictions": outputs["probabilities"].numpy().tolist()}

    model = MnistModel(args.model_name, args.model_dir)
    model.load()
    kserve.ModelServer(workers=1, enable_grpc=False).start([model])


if __name__ == "__main__":
    sys.exit(main())
