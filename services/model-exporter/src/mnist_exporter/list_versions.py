"""`python -m mnist_exporter.list_versions BASE`: the published versions and their model cards.

Reads only the base path (no TensorFlow unless it is a gs:// URI), for `make versions`.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

from mnist_exporter.model_card import read_card
from mnist_exporter.versions import all_version_numbers, is_complete


def describe(base: str) -> list[str]:
    lines = []
    for version in reversed(all_version_numbers(base)):
        if not is_complete(base, version):
            lines.append(f"{version:>8}  incomplete (no saved_model.pb): not a SavedModel")
            continue
        card = read_card(base, version) or {}
        validation = card.get("validation") or {}
        accuracy = validation.get("accuracy")
        figures = "no model card"
        if accuracy is not None:
            figures = f"accuracy {accuracy:.4f} on {validation.get('digits')} digits"
        lines.append(
            f"{version:>8}  {figures}  created {card.get('created', '?')}  "
            f"commit {str(card.get('git_commit', '?'))[:12]}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mnist_exporter.list_versions",
        description="List the published versions in a model base path, newest first.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('mnist-model-exporter')}")
    parser.add_argument("model_base_path", metavar="MODEL_BASE_PATH", help="folder (or gs:// URI) of numbered versions")
    base = parser.parse_args(argv).model_base_path  # exits 2 with usage on a wrong argument count
    lines = describe(base)
    if not lines:
        print(f"no versions in {base} (run 'make export')")
        return 0
    print(f"{'version':>8}  (newest first; TF Serving serves the top one)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
