"""The Kubernetes API from inside a pod, for the one object a pipeline step changes: the ConfigMap
model-rollout (mnist_common.rollout.configmap), and the pods the rollout watches. Plain HTTPS with the pod's service-account token,
as every in-cluster client does (the kubernetes client's load_incluster_config reads the same
environment variables and files), so the exporter image needs no Kubernetes client library.

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
                f"{token_file}): --configmap-namespace works only inside the cluster"
            )
        with open(token_file) as handle:
            token = handle.read().strip()
        host = f"[{host}]" if ":" in host else host
        return cls(f"https://{host}:{port}", token, os.path.join(SERVICE_ACCOUNT, "ca.crt"))

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
