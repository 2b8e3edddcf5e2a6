"""The one module that talks to the Kubernetes API. Everything else gets a `Cluster` handed in,
so tests use an in-memory fake with the same methods."""

from __future__ import annotations

import json
import os
import re
from typing import Protocol

from mnist_deploy.errors import Conflict, DeployError

FIELD_MANAGER = "mnist-deploy"
# Where a missing custom resource kind comes from, for the error message.
KIND_SOURCES = {
    "TFJob": "install the Kubeflow Training Operator (it provides kubeflow.org/v1 TFJob)",
    "PodMonitoring": "enable Google Cloud Managed Service for Prometheus on the cluster",
    "BackendConfig": "GKE provides it; this overlay needs a GKE cluster",
    "FrontendConfig": "GKE provides it; this overlay needs a GKE cluster",
    "ManagedCertificate": "GKE provides it; this overlay needs a GKE cluster",
}


def refusal_message(error) -> str:
    """The API server's own explanation from an error response, without the traceback the
    client library appends to str(error)."""
    try:
        return json.loads(error.body).get("message") or str(error.body)
    except (TypeError, ValueError):
        return str(error.body or "")


# RFC 9111 5.5 (obsoleted, but what the API server still sends): `299 - "text"`, the text a quoted
# string with backslash escapes. k8s.io/apiserver's warning package writes one header per warning.
WARNING_HEADER = re.compile(r'^\s*\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"')


def warning_texts(values: list[str]) -> list[str]:
    """The texts of an HTTP response's Warning headers."""
    texts = []
    for value in values:
        match = WARNING_HEADER.match(value)
        texts.append(re.sub(r"\\(.)", r"\1", match.group(1)) if match else value.strip())
    return texts


class Cluster(Protocol):
    def ensure_kind(self, obj: dict) -> None: ...
    def apply(self, obj: dict, dry_run: bool = False) -> dict: ...
    def dry_run(self, obj: dict) -> list[str]: ...
    def create(self, obj: dict) -> dict: ...
    def replace(self, obj: dict) -> dict: ...
    def list_labelled(self, group_kind: str, namespace: str, label_selector: str) -> list[dict]: ...
    def list_events(self, namespace: str) -> list[dict]: ...
    def get(self, obj: dict) -> dict | None: ...
    def delete(self, obj: dict) -> None: ...
    def list_pods(self, namespace: str, label_selector: str) -> list[dict]: ...
    def pod_log(self, namespace: str, pod: str, container: str, tail_lines: int) -> str: ...
    def pod_proxy_get(self, namespace: str, pod: str, port: int, path: str) -> str: ...  # OSError if not


class KubeCluster:
    """A real cluster through the kubernetes client's dynamic client (any kind, CRDs included)."""

    def __init__(self, api_client, dynamic_client=None, core_api=None):
        from kubernetes import client, dynamic

        self._dynamic = dynamic_client or dynamic.DynamicClient(api_client)
        self._core = core_api or client.CoreV1Api(api_client)

    def _resource(self, obj: dict):
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self._dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        except ResourceNotFoundError:
            hint = KIND_SOURCES.get(obj["kind"], "install the CRD that provides it")
            raise DeployError(f"the cluster has no {obj['kind']} ({obj['apiVersion']}): {hint}") from None

    def ensure_kind(self, obj: dict) -> None:
        """Raise DeployError, saying what to install, if the cluster does not serve obj's kind."""
        self._resource(obj)

    def apply(self, obj: dict, dry_run: bool = False) -> dict:
        """Server-side apply as field manager `mnist-deploy`, taking over fields it set before
        with other tools (force), so re-running `make deploy` always converges. With dry_run
        the server runs every check (admission, webhooks, schema) and stores nothing."""
        return self._server_side_apply(obj, {"dry_run": "All"} if dry_run else {}).to_dict()

    def dry_run(self, obj: dict) -> list[str]:
        """A server-side dry run of obj (raises DeployError if refused); returns the warnings the
        server sent with its answer (admission's, such as PodSecurity's `would violate ...` for
        a workload whose pods the namespace's warn level would refuse, and deprecations)."""
        response = self._server_side_apply(obj, {"dry_run": "All", "serialize": False})
        headers = response.headers
        values = headers.getlist("Warning") if hasattr(headers, "getlist") else headers.get_all("Warning") or []
        return warning_texts(values)

    def _server_side_apply(self, obj: dict, options: dict):
        from kubernetes.dynamic.exceptions import DynamicApiError

        resource = self._resource(obj)
        try:
            return self._dynamic.server_side_apply(
                resource,
                body=obj,
                namespace=obj["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                **options,
            )
        except DynamicApiError as error:
            raise DeployError(
                f"the API server refused {obj['kind']}/{obj['metadata']['name']}: "
                f"{error.status} {error.reason}: {refusal_message(error)}"
            ) from None

    def _write(self, verb: str, obj: dict) -> dict:
        """create or replace, where a 409 (exists, or changed since it was read) is a Conflict:
        the lock relies on the server refusing the second writer."""
        from kubernetes.dynamic.exceptions import ConflictError, DynamicApiError

        resource = self._resource(obj)
        try:
            result = getattr(self._dynamic, verb)(resource, body=obj, namespace=obj["metadata"].get("namespace"))
        except ConflictError as error:
            raise Conflict(f"{obj['kind']}/{obj['metadata']['name']}: {refusal_message(error)}") from None
        except DynamicApiError as error:
            raise DeployError(
                f"the API server refused to {verb} {obj['kind']}/{obj['metadata']['name']}: "
                f"{error.status} {error.reason}: {refusal_message(error)}"
            ) from None
        return result.to_dict()

    def create(self, obj: dict) -> dict:
        return self._write("create", obj)

    def replace(self, obj: dict) -> dict:
        """Replace obj; its metadata.resourceVersion makes it fail (Conflict) if it changed."""
        return self._write("replace", obj)

    def list_labelled(self, group_kind: str, namespace: str, label_selector: str) -> list[dict]:
        """Objects of a `Kind.group` (as ApplySets name kinds) carrying the labels, in namespace
        (or cluster-wide for cluster-scoped kinds), with apiVersion and kind filled in (a list
        response leaves them out of its items)."""
        kind, _, group = group_kind.partition(".")
        found = [
            resource
            for resource in self._dynamic.resources.search(group=group, kind=kind)
            if resource.group == group and resource.kind == kind
        ]
        if not found:
            return []  # the kind is gone from the cluster (a CRD removed): nothing of it to find
        resource = sorted(found, key=lambda resource: not resource.preferred)[0]
        listed = self._dynamic.get(
            resource, namespace=namespace if resource.namespaced else None, label_selector=label_selector
        ).to_dict()["items"]
        return [{"apiVersion": resource.group_version, "kind": kind, **item} for item in listed]

    def list_events(self, namespace: str) -> list[dict]:
        events = self._dynamic.resources.get(api_version="v1", kind="Event")
        return self._dynamic.get(events, namespace=namespace).to_dict()["items"]

    def get(self, obj: dict) -> dict | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            found = self._dynamic.get(
                self._resource(obj), name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace")
            )
        except NotFoundError:
            return None
        return found.to_dict()

    def delete(self, obj: dict) -> None:
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            # Background: the object goes now, its pods are garbage-collected after it.
            self._dynamic.delete(
                self._resource(obj),
                name=obj["metadata"]["name"],
                namespace=obj["metadata"].get("namespace"),
                body={"propagationPolicy": "Background"},
            )
        except NotFoundError:
            pass

    def list_pods(self, namespace: str, label_selector: str) -> list[dict]:
        pods = self._dynamic.resources.get(api_version="v1", kind="Pod")
        return self._dynamic.get(pods, namespace=namespace, label_selector=label_selector).to_dict()["items"]

    def pod_log(self, namespace: str, pod: str, container: str, tail_lines: int) -> str:
        return self._core.read_namespaced_pod_log(pod, namespace, container=container, tail_lines=tail_lines)

    def pod_proxy_get(self, namespace: str, pod: str, port: int, path: str) -> str:
        """GET through the API server's pod proxy (the rollout watching each TF Serving replica)."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self._core.connect_get_namespaced_pod_proxy_with_path(f"{pod}:{port}", namespace, path)
        except ApiException as error:
            raise OSError(f"pod {pod} port {port} /{path}: {error.status} {error.reason}") from None


def connect(context: str | None = None) -> KubeCluster:
    """A KubeCluster from the kubeconfig (or the in-cluster account), or a message saying how
    to get one."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        # KUBECONFIG is read now, not when the library was imported (its default is fixed then).
        kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
    except (ConfigException, FileNotFoundError, TypeError) as kube_error:
        try:
            config.load_incluster_config()
            api_client = client.ApiClient()
        except ConfigException:
            raise DeployError(
                f"no Kubernetes cluster configured ({kube_error}). Point KUBECONFIG or "
                "~/.kube/config at one: for GKE run 'gcloud container clusters get-credentials "
                "CLUSTER --region REGION --project PROJECT_ID'; locally 'kind create cluster'."
            ) from None
    try:
        return KubeCluster(api_client)
    except Exception as error:  # discovery is the first request: unreachable, bad credentials
        host = getattr(getattr(api_client, "configuration", None), "host", "of the kubeconfig")
        raise DeployError(
            f"cannot reach the Kubernetes API server {host} (is the cluster running, "
            f"is this the right kubectl context?): {str(error).splitlines()[0]}"
        ) from None
