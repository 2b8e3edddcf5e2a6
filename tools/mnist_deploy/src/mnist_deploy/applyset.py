"""The inventory of what a deploy applied, as a Kubernetes ApplySet (KEP-3659, the convention
`kubectl apply --prune --applyset` follows), so the next deploy can delete what left the render
and `undeploy` can find everything without the render.

  parent   a Secret in the render's namespace, labelled applyset.kubernetes.io/id=<id> and
           annotated with the tooling (mnist-deploy/v1) and the kinds its members have
           (contains-group-kinds, `Kind.group`, sorted, comma-separated)
  members  every applied object, labelled applyset.kubernetes.io/part-of=<id>
  id       applyset-<base64url(sha256("<name>.<namespace>.<kind>.<group>")), unpadded>-v1

All pure: cluster calls happen in deploy.
"""

from __future__ import annotations

import base64
import copy
import hashlib

from mnist_deploy.errors import DeployError

ID_LABEL = "applyset.kubernetes.io/id"
PART_OF_LABEL = "applyset.kubernetes.io/part-of"
TOOLING_ANNOTATION = "applyset.kubernetes.io/tooling"
GROUP_KINDS_ANNOTATION = "applyset.kubernetes.io/contains-group-kinds"
TOOLING = "mnist-deploy/v1"
PARENT_NAME = "mnist-deploy"
PARENT_KIND, PARENT_GROUP = "Secret", ""


def applyset_id(name: str, namespace: str, kind: str = PARENT_KIND, group: str = PARENT_GROUP) -> str:
    digest = hashlib.sha256(f"{name}.{namespace}.{kind}.{group}".encode()).digest()
    return f"applyset-{base64.urlsafe_b64encode(digest).decode().rstrip('=')}-v1"


def group_kind(obj: dict) -> str:
    """`Kind.group` of an object (`Kind` alone for the core group), as the annotation lists them."""
    api_version = obj["apiVersion"]
    group = api_version.split("/")[0] if "/" in api_version else ""
    return f"{obj['kind']}.{group}" if group else obj["kind"]


def render_namespace(objects: list[dict]) -> str:
    """The one namespace the render's namespaced objects live in (the parent goes there)."""
    namespaces = {obj["metadata"]["namespace"] for obj in objects if obj["metadata"].get("namespace")}
    if len(namespaces) != 1:
        raise DeployError(
            f"the render must put its objects in exactly one namespace, found {sorted(namespaces) or 'none'}"
        )
    return namespaces.pop()


def parent(namespace: str, group_kinds: set[str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": PARENT_KIND,
        "type": "Opaque",
        "metadata": {
            "name": PARENT_NAME,
            "namespace": namespace,
            "labels": {ID_LABEL: applyset_id(PARENT_NAME, namespace)},
            "annotations": {TOOLING_ANNOTATION: TOOLING, GROUP_KINDS_ANNOTATION: ",".join(sorted(group_kinds))},
        },
    }


def contained_group_kinds(live_parent: dict | None) -> set[str]:
    if live_parent is None:
        return set()
    listed = (live_parent["metadata"].get("annotations") or {}).get(GROUP_KINDS_ANNOTATION, "")
    return {entry for entry in listed.split(",") if entry}


def foreign_tooling(live_parent: dict | None) -> str | None:
    """The tooling of a parent some other tool manages (we must not prune for it), else None."""
    if live_parent is None:
        return None
    tooling = (live_parent["metadata"].get("annotations") or {}).get(TOOLING_ANNOTATION)
    return tooling if tooling and tooling.split("/")[0] != TOOLING.split("/")[0] else None


def as_member(obj: dict, namespace: str) -> dict:
    """A copy of obj labelled as a member of the namespace's ApplySet."""
    member = copy.deepcopy(obj)
    member["metadata"].setdefault("labels", {})[PART_OF_LABEL] = applyset_id(PARENT_NAME, namespace)
    return member


def member_selector(namespace: str) -> str:
    return f"{PART_OF_LABEL}={applyset_id(PARENT_NAME, namespace)}"


def identity(obj: dict) -> tuple[str, str | None, str]:
    return group_kind(obj), obj["metadata"].get("namespace"), obj["metadata"]["name"]


def to_prune(live_members: list[dict], objects: list[dict]) -> list[dict]:
    """The live members the render no longer has."""
    wanted = {identity(obj) for obj in objects}
    return [member for member in live_members if identity(member) not in wanted]
