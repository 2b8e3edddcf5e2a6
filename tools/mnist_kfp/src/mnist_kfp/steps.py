"""What each step of the pipeline is, declared once: its image, its command, and whether KFP may
reuse a cached result. The components (components.py) are built from it, and tests/pipeline checks
the compiled IR against it. Pure Python: readable without the Kubeflow Pipelines SDK.

Steps that change shared state (publish a version, move the rollout) or read it (evaluate reads
the published version) are never cached: a cached result would skip the change or report on a
version that retention may since have deleted.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Step:
    image: str  # "trainer" or "exporter": the field of mnist_kfp.parameters.Images
    command: str
    cached: bool


STEPS = {
    "prepare-data": Step("trainer", "mnist-data", cached=True),
    "train": Step("trainer", "mnist-train", cached=True),
    # The distributed alternative to train (distributed_workers >= 2): one of the two runs.
    "train-tfjob": Step("trainer", "mnist-train-tfjob", cached=True),
    "export": Step("exporter", "mnist-export", cached=False),
    "evaluate": Step("exporter", "mnist-evaluate", cached=False),
    "publish": Step("exporter", "mnist-publish", cached=False),
}
# The order the steps run in: each depends on the one before (train and train-tfjob are the two
# branches of one stage: exactly one of them runs).
ORDER = tuple(STEPS)
BRANCHES = {"train": "train-tfjob"}
