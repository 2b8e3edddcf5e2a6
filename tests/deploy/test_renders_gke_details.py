"""Details of the GKE renders: gcsfuse volumes scoped with only-dir (never subPath), TensorBoard
behind IAP as an option of the ingress, and the part-of label on every object and pod."""

from __future__ import annotations

import ipaddress
import json
import re

import pytest

from mnist_deploy import policy
from tests.deploy.renders import TARGETS, find

GCSFUSE = "gcsfuse.csi.storage.gke.io"
PART_OF = "app.kubernetes.io/part-of"
# Google's documented source ranges of external Application Load Balancers' proxies and health checks.
LOAD_BALANCER_RANGES = {ipaddress.ip_network("35.191.0.0/16"), ipaddress.ip_network("130.211.0.0/22")}
IAP_TENSORBOARD = "tests/gke-public-tensorboard"


def mount_options(volume: dict) -> dict[str, str]:
    text = volume["csi"].get("volumeAttributes", {}).get("mountOptions", "")
    return dict((option.split("=", 1) + [""])[:2] for option in text.split(",") if option)


@pytest.mark.parametrize("target", TARGETS)
def test_gcsfuse_volumes_are_scoped_with_only_dir_not_subpath(renders, target):
    for _obj, where, template in policy.all_pods(renders[target]):
        fuse = {v["name"]: v for v in template["spec"].get("volumes", []) if v.get("csi", {}).get("driver") == GCSFUSE}
        for container in policy.containers(template):
            for mount in container.get("volumeMounts", []):
                if mount["name"] in fuse:
                    assert "subPath" not in mount and "subPathExpr" not in mount, f"{where} {container['name']}"


def test_tf_serving_sees_the_models_folder_of_the_bucket(renders):
    gke = renders["overlays/gke"]
    serving = find(gke, "Deployment", "tf-serving")["spec"]["template"]["spec"]
    volume = next(v for v in serving["volumes"] if v["name"] == "storage")
    mount = next(m for m in serving["containers"][0]["volumeMounts"] if m["name"] == "storage")
    assert mount_options(volume)["only-dir"] == "models" and volume["csi"]["readOnly"] is True
    # The config's base path below the mount is where the exporter writes below storage's models/.
    config_map = find(
        gke,
        "ConfigMap",
        serving["volumes"][[v["name"] for v in serving["volumes"]].index("rollout")]["configMap"]["name"],
    )
    base_path = re.search(r'base_path:\s*"([^"]+)"', config_map["data"]["models.config"]).group(1)
    exporter = find(gke, "Job", "mnist-export")["spec"]["template"]["spec"]["containers"][0]
    export_path = next(a.split("=", 1)[1] for a in exporter["args"] if a.startswith("--model-base-path="))
    writer_mount = next(m for m in exporter["volumeMounts"] if m["name"] == "storage")["mountPath"]
    assert export_path.removeprefix(writer_mount + "/") == "models/" + base_path.removeprefix(mount["mountPath"] + "/")
    # The other readers still see the whole bucket.
    web_ui = find(gke, "Deployment", "web-ui")["spec"]["template"]["spec"]
    assert "only-dir" not in mount_options(next(v for v in web_ui["volumes"] if v["name"] == "storage"))


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_and_pod_is_part_of_mnist(renders, target):
    objects = renders[target]
    values = {obj["metadata"].get("labels", {}).get(PART_OF) for obj in objects}
    values |= {template["metadata"].get("labels", {}).get(PART_OF) for _, _, template in policy.all_pods(objects)}
    assert values == {"mnist"}, f"{target}: part-of values {values}"


def iap_backends(objects: list[dict], ingress: dict) -> dict[str, dict]:
    """{path: BackendConfig} for the default backend ("") and every rule of the ingress."""
    backends = {"": ingress["spec"]["defaultBackend"]}
    for rule in ingress["spec"].get("rules", []):
        for path in rule["http"]["paths"]:
            backends[path["path"]] = path["backend"]
    configs = {}
    for path, backend in backends.items():
        service = find(objects, "Service", backend["service"]["name"])
        annotations = service["metadata"].get("annotations", {})
        assert json.loads(annotations.get("cloud.google.com/neg", "{}")).get("ingress") is True, path
        config = json.loads(annotations["cloud.google.com/backend-config"])["default"]
        configs[path] = find(objects, "BackendConfig", config)
    return configs


def test_tensorboard_is_an_iap_path_of_the_ingress(renders):
    objects = renders[IAP_TENSORBOARD]
    ingress = find(objects, "Ingress", "web-ui")
    configs = iap_backends(objects, ingress)
    assert set(configs) == {"", "/tensorboard"}
    assert all(config["spec"]["iap"]["enabled"] is True for config in configs.values())
    rule = ingress["spec"]["rules"][0]
    assert "host" not in rule or rule["host"] == find(objects, "ManagedCertificate", "web-ui")["spec"]["domains"][0]
    # TensorBoard serves under the path the load balancer forwards, and is checked there.
    container = find(objects, "Deployment", "tensorboard")["spec"]["template"]["spec"]["containers"][0]
    assert "--path_prefix=/tensorboard" in container["args"]
    health = configs["/tensorboard"]["spec"]["healthCheck"]
    assert health["requestPath"].startswith("/tensorboard/")
    assert health["port"] == container["ports"][0]["containerPort"]
    assert container["readinessProbe"]["httpGet"]["path"] == health["requestPath"]


def test_with_network_policies_only_the_load_balancer_reaches_tensorboard(renders):
    objects = renders[IAP_TENSORBOARD]
    labels = find(objects, "Deployment", "tensorboard")["spec"]["template"]["metadata"]["labels"]
    rules = [
        rule
        for obj in objects
        if obj["kind"] == "NetworkPolicy" and policy.selects(obj["spec"]["podSelector"], labels)
        for rule in obj["spec"].get("ingress", [])
    ]
    assert rules, "nothing lets the load balancer in"
    for rule in rules:
        assert {port["port"] for port in rule["ports"]} == {6006}
        assert (
            rule["from"]
            and {ipaddress.ip_network(source["ipBlock"]["cidr"]) for source in rule["from"]} <= LOAD_BALANCER_RANGES
        )


def test_without_the_option_the_ingress_has_only_the_web_ui(renders):
    for target in ("overlays/gke", "tests/gke-single-trainer-public"):
        objects = renders[target]
        assert set(iap_backends(objects, find(objects, "Ingress", "web-ui"))) == {""}
