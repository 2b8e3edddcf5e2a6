"""The rollout on a cluster: the state is the ConfigMap model-rollout (mnist_common.rollout.configmap),
mounted by TF Serving (models.config, re-read every 30 s) and the web UI (rollout.json), so a
change is one server-side apply and reaches the pods without a restart.

`change` reads the ConfigMap, applies a pure transition of decisions.py and writes the whole
ConfigMap back as field manager `mnist-rollout`. The versions `make canary` may name are the ones
the cluster's export Job recorded in published.json: the cluster's model storage (a PVC or a
bucket) is not readable from the machine running make. The promote guard reads the web UI's
/metrics through the Kubernetes API's service proxy.
"""

from __future__ import annotations

from typing import Protocol

from mnist_common.rollout import configmap
from mnist_common.rollout.state import RolloutState
from mnist_rollout import decisions

NAMESPACE = "mnist"
WEB_UI_METRICS = ("web-ui:http", "metrics")  # service (name:port) and path for the API's proxy


class RolloutConfigMap(Protocol):
    def read(self) -> dict | None: ...  # the ConfigMap's data, None when it does not exist
    def apply(self, manifest: dict) -> None: ...
    def web_ui_metrics(self) -> str | None: ...  # the exposition text, None when it cannot be read


class NoConfigMap(decisions.RolloutRefused):
    pass


def load(cluster: RolloutConfigMap) -> tuple[RolloutState | None, list[int]]:
    data = cluster.read()
    if data is None:
        raise NoConfigMap(f"the cluster has no ConfigMap {configmap.NAME} in {NAMESPACE}: run make deploy first")
    return configmap.read_data(data)


def write(
    cluster: RolloutConfigMap, new: RolloutState, current: RolloutState | None, published: list[int]
) -> RolloutState:
    written = configmap.stamped(new, current)
    cluster.apply(configmap.manifest(written, published, NAMESPACE))
    return written


class KubeRolloutConfigMap:
    """RolloutConfigMap through the kubernetes client (the kubeconfig's context, or in-cluster)."""

    def __init__(self, api_client, namespace: str = NAMESPACE):
        from kubernetes import client, dynamic

        self._core = client.CoreV1Api(api_client)
        self._dynamic = dynamic.DynamicClient(api_client)
        self.namespace = namespace

    def read(self) -> dict | None:
        from kubernetes.client.exceptions import ApiException

        try:
            found = self._core.read_namespaced_config_map(configmap.NAME, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise decisions.RolloutRefused(
                f"cannot read ConfigMap {configmap.NAME}: {error.status} {error.reason}"
            ) from None
        return found.data or {}

    def apply(self, manifest: dict) -> None:
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
            raise decisions.RolloutRefused(
                f"the API server refused ConfigMap {configmap.NAME}: {error.status} {error.reason}"
            ) from None

    def web_ui_metrics(self) -> str | None:
        from kubernetes.client.exceptions import ApiException

        service, path = WEB_UI_METRICS
        try:
            return self._core.connect_get_namespaced_service_proxy_with_path(service, self.namespace, path)
        except (ApiException, OSError):
            return None


def connect(context: str | None) -> KubeRolloutConfigMap:
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
            raise decisions.RolloutRefused(
                f"no Kubernetes cluster configured ({kube_error}): point KUBECONFIG or ~/.kube/config at one"
            ) from None
    return KubeRolloutConfigMap(api_client)
