"""The rollout's way into a cluster: mnist_common.rollout.configmap.KubeAccess through the
kubernetes client of the kubeconfig's context (or in-cluster).

    read_configmap / apply_configmap   the ConfigMap model-rollout, written by server-side apply
                                       as field manager mnist-rollout (forcing: the deploy created it)
    pods                               the Running pods of a component (tf-serving, web-ui)
    pod_get                            GET through the API server's pod proxy: each TF Serving
                                       replica's REST API (port 8501), each web UI pod's `metrics` port

What it needs: RBAC get/patch on configmaps/model-rollout, list on pods, get on pods/proxy in the
namespace; a NetworkPolicy letting the API server (the control plane's range) reach those ports.
"""

from __future__ import annotations

from mnist_common.rollout import configmap
from mnist_common.rollout.transitions import RolloutRefused

NAMESPACE = "mnist"


class KubeAccess:
    """configmap.KubeAccess through the kubernetes client."""

    def __init__(self, api_client, namespace: str = NAMESPACE):
        from kubernetes import client, dynamic

        self._core = client.CoreV1Api(api_client)
        self._dynamic = dynamic.DynamicClient(api_client)
        self.namespace = namespace
        self._ports: dict[str, dict[str, int]] = {}

    def read_configmap(self) -> dict | None:
        from kubernetes.client.exceptions import ApiException

        try:
            found = self._core.read_namespaced_config_map(configmap.NAME, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise RolloutRefused(f"cannot read ConfigMap {configmap.NAME}: {error.status} {error.reason}") from None
        return found.data or {}

    def apply_configmap(self, manifest: dict) -> None:
        from kubernetes.dynamic.exceptions import DynamicApiError

        resource = self._dynamic.resources.get(api_version="v1", kind="ConfigMap")
        try:
            # Force: the deploy created the ConfigMap; from then on its data is the rollout's.
            self._dynamic.server_side_apply(
                resource,
                body=manifest,
                namespace=self.namespace,
                field_manager=configmap.FIELD_MANAGER,
                force_conflicts=True,
            )
        except DynamicApiError as error:
            raise RolloutRefused(
                f"the API server refused ConfigMap {configmap.NAME}: {error.status} {error.reason}"
            ) from None

    def pods(self, component: str) -> list[str]:
        from kubernetes.client.exceptions import ApiException

        try:
            found = self._core.list_namespaced_pod(
                self.namespace, label_selector=f"app.kubernetes.io/component={component}"
            )
        except ApiException as error:
            raise RolloutRefused(f"cannot list the {component} pods: {error.status} {error.reason}") from None
        running = [p for p in found.items if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]
        for pod in running:  # the pod proxy takes a port number: named ports are looked up here
            self._ports[pod.metadata.name] = {
                port.name: port.container_port for c in pod.spec.containers for port in (c.ports or []) if port.name
            }
        return sorted(pod.metadata.name for pod in running)

    def pod_get(self, pod: str, port, path: str) -> str:
        from kubernetes.client.exceptions import ApiException

        number = port if isinstance(port, int) else self._ports.get(pod, {}).get(port)
        if number is None:
            raise OSError(f"pod {pod} has no container port named {port}")
        try:
            return self._core.connect_get_namespaced_pod_proxy_with_path(f"{pod}:{number}", self.namespace, path)
        except ApiException as error:
            raise OSError(f"pod {pod} port {port} /{path}: {error.status} {error.reason}") from None


def connect(context: str | None) -> KubeAccess:
    import os

    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        api_client = config.new_client_from_config(config_file=kubeconfig, context=context or None)
    except (ConfigException, FileNotFoundError, TypeError) as kube_error:
        try:
            config.load_incluster_config()
            api_client = client.ApiClient()
        except ConfigException:
            raise RolloutRefused(
                f"no Kubernetes cluster configured ({kube_error}): point KUBECONFIG or ~/.kube/config at one"
            ) from None
    return KubeAccess(api_client)
