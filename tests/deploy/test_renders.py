"""Every overlay and component combination builds, validates against the Kubernetes OpenAPI
schema (or the CRD's schema), and is what the issue asks of it."""

from __future__ import annotations

import copy
import json
import re

import jsonschema
import kubernetes_validate
import pytest

from mnist_deploy import policy
from tests.deploy.renders import KUSTOMIZE, REPO_ROOT, TARGETS, TEST_IMAGES, find

KUBERNETES_VERSION = "1.37.0"
CRD_SCHEMAS = {
    ("kubeflow.org/v1", "TFJob"): "tfjob-kubeflow-v1.json",
    ("cloud.google.com/v1", "BackendConfig"): "backendconfig-cloud-v1.json",
    ("networking.gke.io/v1beta1", "FrontendConfig"): "frontendconfig-networking-v1beta1.json",
    ("networking.gke.io/v1", "ManagedCertificate"): "managedcertificate-networking-v1.json",
    ("monitoring.googleapis.com/v1", "PodMonitoring"): "podmonitoring-monitoring-v1.json",
}


def crd_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((KUSTOMIZE / "schemas" / CRD_SCHEMAS[(api_version, kind)]).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate(obj: dict) -> None:
    """Raise if obj breaks its schema; an object with no known schema is an error too."""
    key = (obj["apiVersion"], obj["kind"])
    if key in CRD_SCHEMAS:
        crd_validator(*key).validate(obj)
        for _where, template in policy.pod_templates(obj):
            pod_template = {
                "apiVersion": "v1",
                "kind": "PodTemplate",
                "metadata": {"name": "check"},
                "template": template,
            }
            kubernetes_validate.validate(pod_template, KUBERNETES_VERSION, strict=True)
        return
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_validates_against_its_schema(renders, target):
    for obj in renders[target]:
        validate(obj)


@pytest.mark.parametrize("target", TARGETS)
def test_every_render_keeps_the_policies(renders, target):
    assert policy.violations(renders[target]) == []


@pytest.mark.parametrize("target", TARGETS)
def test_no_setting_left_unfilled_and_one_namespace(renders, target):
    for obj in renders[target]:
        assert "${" not in json.dumps(obj), f"{obj['kind']}/{obj['metadata']['name']} has an unfilled setting"
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == "mnist", f"{obj['kind']}/{obj['metadata']['name']}"


def test_the_targets_cover_every_component(renders):
    components = {path.name for path in (KUSTOMIZE / "components").iterdir() if path.is_dir()}
    used = set()
    for target in TARGETS:
        text = (KUSTOMIZE / target / "kustomization.yaml").read_text()
        used |= set(re.findall(r"components/([a-z-]+)", text))
    assert components <= used, f"components never rendered: {components - used}"
    assert {"overlays/local", "overlays/gke"} <= set(TARGETS)


def test_the_schema_check_catches_mistakes(renders):
    """The validation is strict enough to matter: a misspelt field or a wrong value fails."""
    gke = renders["overlays/gke"]
    tfjob = copy.deepcopy(find(gke, "TFJob", "mnist-train"))
    tfjob["spec"]["tfReplicaSpecs"]["Worker"]["restartPolicy"] = "Sometimes"
    with pytest.raises(jsonschema.ValidationError):
        validate(tfjob)
    tfjob = copy.deepcopy(find(gke, "TFJob", "mnist-train"))
    tfjob["spec"]["tfReplicaSpecs"]["Chief"]["replicas"] = 2
    with pytest.raises(jsonschema.ValidationError):
        validate(tfjob)
    tfjob = copy.deepcopy(find(gke, "TFJob", "mnist-train"))
    tfjob["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 7
    with pytest.raises(jsonschema.ValidationError):
        validate(tfjob)
    deployment = copy.deepcopy(find(gke, "Deployment", "web-ui"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(jsonschema.ValidationError):
        validate(deployment)
    certificate = copy.deepcopy(find(gke, "ManagedCertificate", "web-ui"))
    certificate["spec"]["domains"] = ["*.example.com"]
    with pytest.raises(jsonschema.ValidationError):
        validate(certificate)


def test_local_overlay_uses_a_claim_and_has_no_ingress(renders):
    local = renders["overlays/local"]
    kinds = {obj["kind"] for obj in local}
    assert "PersistentVolumeClaim" in kinds and "Ingress" not in kinds
    assert find(local, "Job", "mnist-train")  # the single trainer Job, not a TFJob
    assert "TFJob" not in kinds


def test_gke_overlay_is_the_production_set(renders):
    gke = renders["overlays/gke"]
    kinds = {obj["kind"] for obj in gke}
    assert {
        "TFJob",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "Ingress",
        "BackendConfig",
        "ManagedCertificate",
        "PodMonitoring",
    } <= kinds
    assert "PersistentVolumeClaim" not in kinds
    # The single trainer Job is replaced by the TFJob, with a Chief and Workers.
    assert sorted(obj["metadata"]["name"] for obj in gke if obj["kind"] == "Job") == ["mnist-data", "mnist-export"]
    replicas = find(gke, "TFJob", "mnist-train")["spec"]["tfReplicaSpecs"]
    assert replicas["Chief"]["replicas"] == 1 and replicas["Worker"]["replicas"] >= 1
    tensorboard = find(gke, "Deployment", "tensorboard")
    assert "--logdir=/mnt/storage/training/logs" in tensorboard["spec"]["template"]["spec"]["containers"][0]["args"]


def test_gke_storage_is_the_bucket_through_workload_identity(renders):
    gke = renders["overlays/gke"]
    for _obj, where, template in policy.all_pods(gke):
        volumes = {volume["name"]: volume for volume in template["spec"]["volumes"]}
        storage = volumes["storage"]
        assert "persistentVolumeClaim" not in storage, where
        assert storage["csi"]["driver"] == "gcsfuse.csi.storage.gke.io", where
        assert storage["csi"]["volumeAttributes"]["bucketName"] == "demo-project-mnist", where
        assert template["metadata"]["annotations"]["gke-gcsfuse/volumes"] == "true", where
        writer = template["metadata"]["labels"]["app.kubernetes.io/component"] in policy.STORAGE_WRITERS
        assert storage["csi"].get("readOnly", False) is not writer, where
        account = find(gke, "ServiceAccount", template["spec"]["serviceAccountName"])
        expected = "mnist-writer" if writer else "mnist-reader"
        assert (
            account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
            == f"{expected}@demo-project.iam.gserviceaccount.com"
        ), where


def test_only_the_web_ui_reaches_tf_serving(renders):
    gke = renders["overlays/gke"]
    policies = [obj for obj in gke if obj["kind"] == "NetworkPolicy"]
    deny_all = [p for p in policies if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")]
    assert deny_all, "no default-deny ingress policy"
    serving_labels = find(gke, "Deployment", "tf-serving")["spec"]["template"]["metadata"]["labels"]
    sources = []
    for network_policy in policies:
        if network_policy["spec"]["podSelector"] and policy.selects(
            network_policy["spec"]["podSelector"], serving_labels
        ):
            for rule in network_policy["spec"].get("ingress", []):
                ports = {port["port"] for port in rule.get("ports", [])}
                if ports & {8500, 8501}:
                    sources.extend(rule.get("from", [{"anything": True}]))
    pod_sources = [source for source in sources if "namespaceSelector" not in source]
    assert pod_sources == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "web-ui"}}}]
    # Apart from the web UI, only Managed Prometheus' collector pods reach the metrics port.
    for source in sources:
        assert source in pod_sources or source == {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gmp-system"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "collector"}},
        }
    assert all("ipBlock" not in source for source in sources)


def test_ingress_is_behind_iap_with_a_managed_certificate(renders):
    gke = renders["overlays/gke"]
    ingress = find(gke, "Ingress", "web-ui")
    assert ingress["metadata"]["annotations"]["networking.gke.io/managed-certificates"] == "web-ui"
    assert find(gke, "ManagedCertificate", "web-ui")["spec"]["domains"] == ["mnist.example.com"]
    service = find(gke, "Service", ingress["spec"]["defaultBackend"]["service"]["name"])
    backend = json.loads(service["metadata"]["annotations"]["cloud.google.com/backend-config"])
    config = find(gke, "BackendConfig", backend["default"])
    assert config["spec"]["iap"]["enabled"] is True
    # Every path of the ingress goes to a backend with IAP: no rule bypasses it.
    assert not ingress["spec"].get("rules")
    assert find(gke, "FrontendConfig", "web-ui")["spec"]["redirectToHttps"]["enabled"] is True


def test_autoscaled_deployments_leave_replicas_to_the_autoscaler(renders):
    for target, objects in renders.items():
        for hpa in (obj for obj in objects if obj["kind"] == "HorizontalPodAutoscaler"):
            deployment = find(objects, "Deployment", hpa["spec"]["scaleTargetRef"]["name"])
            assert "replicas" not in deployment["spec"], f"{target}: {hpa['metadata']['name']}"


def test_tf_serving_is_the_real_pinned_server_with_the_shared_config(renders):
    local = renders["overlays/local"]
    serving = find(local, "Deployment", "tf-serving")["spec"]["template"]["spec"]
    container = serving["containers"][0]
    # The server is the TensorFlow release the serving-compatibility check loads models with
    # (tests/model_exporter/test_serving_runtime.py); the client API may be newer (same protos).
    lock = (REPO_ROOT / "requirements" / "serving-compat-constraints.txt").read_text()
    runtime = re.search(r"^tensorflow-cpu==(\S+)$", lock, re.M).group(1)
    assert container["image"] == f"tensorflow/serving:{runtime}", "serving image and its checked runtime differ"
    args = container["args"]
    for flag in (
        "--port=8500",
        "--rest_api_port=8501",
        "--enable_batching=true",
        "--model_config_file=/etc/model-rollout/models.config",
        "--monitoring_config_file=/etc/tf-serving/monitoring.config",
        "--batching_parameters_file=/etc/tf-serving/batching_parameters.txt",
    ):
        assert flag in args
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/models/mnist", "port": 8501}
    config_volume = next(v for v in serving["volumes"] if v["name"] == "config")
    config_map = find(local, "ConfigMap", config_volume["configMap"]["name"])
    source = REPO_ROOT / "services" / "tf-serving" / "config"
    for name in ("monitoring.config", "batching_parameters.txt"):
        assert config_map["data"][name] == (source / name).read_text(), name
    # The model list is the ConfigMap the rollout rewrites (test_model_rollout_configmap.py).
    rollout_volume = next(v for v in serving["volumes"] if v["name"] == "rollout")
    models_config = find(local, "ConfigMap", rollout_volume["configMap"]["name"])["data"]["models.config"]
    assert models_config == (source / "models.config").read_text()
    # The model base path in the config is where the storage's models/ is mounted.
    base_path = re.search(r'base_path:\s*"([^"]+)"', models_config).group(1)
    mount = next(m for m in container["volumeMounts"] if m["name"] == "storage")
    assert base_path.startswith(mount["mountPath"] + "/") and mount["subPath"] == "models"
    exporter = find(local, "Job", "mnist-export")["spec"]["template"]["spec"]["containers"][0]
    assert "--model-base-path=/mnt/storage/models/mnist" in exporter["args"]
    assert base_path == "/models/mnist"


def test_images_are_the_ones_make_sets(renders):
    for target, objects in renders.items():
        images = {
            container["image"]
            for _, _, template in policy.all_pods(objects)
            for container in policy.containers(template)
        }
        ours = {image for image in images if not image.startswith("tensorflow/serving:")}
        assert ours and ours <= set(TEST_IMAGES.values()), f"{target}: {ours - set(TEST_IMAGES.values())}"
