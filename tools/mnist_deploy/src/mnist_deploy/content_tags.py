"""Image tags from what goes into each image, not from the commit.

An image's tag is a hash of its Dockerfile and of every file its COPY lines bring in (tracked or
new, as git lists them, .gitignore'd files left out), so a commit that changes only the web UI
changes only the web UI's tag, and the rendered data/train/export Jobs, which name the trainer and
exporter images, stay byte-identical: a web UI release never retrains.

    python -m mnist_deploy.content_tags      # prints mnist-trainer=c-1a2b3c4d5e6f ... for make
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys

# image name: the folder under services/ with its Dockerfile (as IMAGES in mk/70-deploy.mk)
IMAGES = {"mnist-trainer": "trainer", "mnist-model-exporter": "model-exporter", "mnist-web-ui": "web-ui"}
_COPY = re.compile(r"^\s*(?:COPY|ADD)\s+(?!--from)(?:--\S+\s+)*(.+)$", re.I | re.M)


def copy_sources(dockerfile_text: str) -> list[str]:
    """The build-context paths a Dockerfile's COPY/ADD lines take (not COPY --from=stage)."""
    sources = []
    for match in _COPY.finditer(dockerfile_text):
        parts = match.group(1).split()
        sources += parts[:-1]  # the last one is the destination
    return sources


def _files(root: str, paths: list[str]) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *paths],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout
    return sorted({name for name in listed.decode().split("\0") if name and os.path.isfile(os.path.join(root, name))})


def content_tag(root: str, service_dir: str) -> str:
    dockerfile = os.path.join("services", service_dir, "Dockerfile")
    with open(os.path.join(root, dockerfile), "rb") as handle:
        text = handle.read()
    digest = hashlib.sha256(b"Dockerfile\0" + text)
    for name in _files(root, copy_sources(text.decode())):
        with open(os.path.join(root, name), "rb") as handle:
            digest.update(b"\0" + name.encode() + b"\0" + hashlib.sha256(handle.read()).digest())
    return "c-" + digest.hexdigest()[:12]


def content_tags(root: str) -> dict[str, str]:
    return {image: content_tag(root, folder) for image, folder in IMAGES.items()}


def main() -> int:
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True).stdout.strip()
    if not root:
        print("content_tags: error: not inside a git work tree (set IMAGE_TAG=...)", file=sys.stderr)
        return 2
    print(" ".join(f"{image}={tag}" for image, tag in content_tags(root).items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
