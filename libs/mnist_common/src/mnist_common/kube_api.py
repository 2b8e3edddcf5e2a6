"""The Kubernetes API from inside a pod, for what the pipeline's steps change: the ConfigMap
model-rollout (mnist_common.rollout.configmap) and the pods the rollout watches (the exporter's
publish step), and the TFJob of a distributed training run (the trainer's mnist-train-tfjob).
Plain HTTPS with the pod's service-account token, as every in-cluster client does (the kubernetes
client's load_incluster_config reads the same environment variables and files), so no image
needs a Kubernetes client library.

A ConfigMap write is a server-side apply as field manager `mnist-rollout` (PATCH with content
type application/apply-patch+yaml, force=true; JSON is YAML); the rollout's phases also read the
TF Serving and web UI pods through the API server's pod proxy, as make deploy does.
"""

from __future__ import annotations

import json
import os

import requests

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


class KubeApiError(Exception):
    """The API server cannot be reached or refused the request; the message says which."""


class InClusterApi:
    def __init__(self, base_url: str, token: str, ca_file: str | bool = True, timeout: float = 30):
        self.base_url, self.timeout = base_url.rstrip("/"), timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.verify = ca_file

    @classmethod
    def from_pod(cls) -> InClusterApi:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        token_file = os.path.join(SERVICE_ACCOUNT, "token")
        if not host or not os.path.exists(token_file):
            raise KubeApiError(
                "not in a Kubernetes pod with a service-account token (KUBERNETES_SERVICE_HOST, "
                f"{token_file}): this step talks to the Kubernetes API and works only inside the cluster"
            )
        with open(token_file) as handle:
            token = handle.read().strip()
        host = f"[{host}]" if ":" in host else host
        return cls(f"https://{host}:{port}", token, os.path.join(SERVICE_ACCOUNT, "ca.crt"))

    @staticmethod
    def pod_namespace() -> str:
        """The namespace this pod runs in, as its service account's token was issued for."""
        try:
            with open(os.path.join(SERVICE_ACCOUNT, "namespace")) as handle:
                return handle.read().strip()
        except OSError as error:
            raise KubeApiError(f"the pod's namespace is unknown ({error})") from None

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return self.session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as error:
            raise KubeApiError(f"{method} {path}: the API server does not answer ({error})") from None

    def read_config_map(self, namespace: str, name: str) -> dict | None:
        """The ConfigMap's data, or None when it does not exist."""
        answer = self._request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise KubeApiError(f"reading ConfigMap {namespace}/{name}: {answer.status_code} {answer.text[:300]}")
        return answer.json().get("data") or {}

    def apply(self, manifest: dict, field_manager: str) -> None:
        meta = manifest["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/configmaps/{meta['name']}"
        answer = self._request(
            "PATCH",
            path,
            params={"fieldManager": field_manager, "force": "true"},
            data=json.dumps(manifest),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        if answer.status_code not in (200, 201):
            raise KubeApiError(
                f"the API server refused ConfigMap {meta['name']}: {answer.status_code} {answer.text[:300]}"
            )

    def running_pods(self, namespace: str, label_selector: str) -> list[str]:
        answer = self._request("GET", f"/api/v1/namespaces/{namespace}/pods", params={"labelSelector": label_selector})
        if answer.status_code != 200:
            raise KubeApiError(
                f"listing pods {label_selector} in {namespace}: {answer.status_code} {answer.text[:300]}"
            )
        return sorted(
            pod["metadata"]["name"]
            for pod in answer.json().get("items", [])
            if (pod.get("status") or {}).get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp")
        )

    def pod_proxy_get(self, namespace: str, pod: str, port, path: str) -> str:
        """GET through the API server's pod proxy; OSError when it does not answer 200."""
        try:
            answer = self._request("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/{path.lstrip('/')}")
        except KubeApiError as error:
            raise OSError(str(error)) from None
        if answer.status_code != 200:
            raise OSError(f"{pod}:{port}/{path}: {answer.status_code}")
        return answer.text

    # Custom objects (a CRD's kind, e.g. kubeflow.org/v1 tfjobs): the API server's paths
    # /apis/GROUP/VERSION/namespaces/NS/PLURAL[/NAME], as for every namespaced resource.
    def _custom_path(self, api_version: str, namespace: str, plural: str, name: str = "") -> str:
        path = f"/apis/{api_version}/namespaces/{namespace}/{plural}"
        return f"{path}/{name}" if name else path

    def create_custom(self, api_version: str, namespace: str, plural: str, body: dict) -> dict:
        answer = self._request("POST", self._custom_path(api_version, namespace, plural), json=body)
        if answer.status_code not in (200, 201, 202):
            name = body.get("metadata", {}).get("name")
            raise KubeApiError(f"creating {plural} {namespace}/{name}: {answer.status_code} {answer.text[:300]}")
        return answer.json()

    def get_custom(self, api_version: str, namespace: str, plural: str, name: str) -> dict | None:
        """The object, or None when it does not exist."""
        answer = self._request("GET", self._custom_path(api_version, namespace, plural, name))
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise KubeApiError(f"reading {plural} {namespace}/{name}: {answer.status_code} {answer.text[:300]}")
        return answer.json()

    def delete_custom(self, api_version: str, namespace: str, plural: str, name: str) -> None:
        """Delete the object and, in the background, what it owns (its pods); gone already is fine."""
        answer = self._request(
            "DELETE",
            self._custom_path(api_version, namespace, plural, name),
            json={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
        )
        if answer.status_code not in (200, 202, 404):
            raise KubeApiError(f"deleting {plural} {namespace}/{name}: {answer.status_code} {answer.text[:300]}")
