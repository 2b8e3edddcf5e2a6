"""Each policy check catches the mistake it is there for: a clean render is changed in one place
and exactly that change is reported."""

from __future__ import annotations

import copy

import pytest

from mnist_deploy import policy
from tests.deploy.renders import find


@pytest.fixture
def gke(renders):
    return copy.deepcopy(renders["overlays/gke"])


def container_of(objects, kind, name, index=0):
    return find(objects, kind, name)["spec"]["template"]["spec"]["containers"][index]


def only(problems: list[str]) -> str:
    assert len(problems) == 1, problems
    return problems[0]


def test_a_clean_render_has_no_violations(gke):
    assert policy.violations(gke) == []


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: c["securityContext"].update(readOnlyRootFilesystem=False), "readOnlyRootFilesystem"),
        (lambda c: c["securityContext"].update(allowPrivilegeEscalation=True), "allowPrivilegeEscalation"),
        (lambda c: c["securityContext"]["capabilities"].update(drop=["NET_RAW"]), "drop ALL"),
        (lambda c: c["securityContext"]["capabilities"].update(add=["NET_ADMIN"]), "adds capabilities"),
        (lambda c: c["securityContext"].update(runAsNonRoot=False), "runAsNonRoot"),
        (lambda c: c["securityContext"].update(runAsUser=0), "user 0"),
    ],
)
def test_security_settings_are_checked_per_container(gke, change, expected):
    change(container_of(gke, "Deployment", "web-ui"))
    assert expected in only(policy.check_security(gke))


def test_the_tfjob_pods_are_checked_too(gke):
    tfjob = find(gke, "TFJob", "mnist-train")
    del tfjob["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["securityContext"]["seccompProfile"]
    assert "TFJob/mnist-train[Worker]" in only(policy.check_security(gke))


def test_resources_need_requests_and_limits_in_order(gke):
    del container_of(gke, "Job", "mnist-data")["resources"]["limits"]["memory"]
    assert "no memory limit" in only(policy.check_resources(gke))
    container_of(gke, "Job", "mnist-data")["resources"]["limits"]["memory"] = "256Mi"
    assert "above its limit" in only(policy.check_resources(gke))


def test_long_running_containers_need_both_probes(gke):
    del container_of(gke, "Deployment", "tensorboard")["livenessProbe"]
    assert "no livenessProbe" in only(policy.check_probes(gke))


@pytest.mark.parametrize(
    "image, pinned",
    [
        ("tensorflow/serving:2.21.0", True),
        ("localhost:5000/mnist-web-ui:abc", True),
        ("r.example/x@sha256:" + "0" * 64, True),
        ("tensorflow/serving", False),
        ("tensorflow/serving:latest", False),
        ("localhost:5000/mnist-web-ui", False),
        ("mnist-trainer", False),
    ],
)
def test_images_must_be_pinned(image, pinned):
    assert policy.image_is_pinned(image) is pinned


def test_an_image_make_did_not_set_is_reported(gke):
    container_of(gke, "Job", "mnist-export")["image"] = "mnist-model-exporter"
    assert "not pinned" in only(policy.check_images(gke))


@pytest.mark.parametrize(
    "kind, name",
    [
        ("ServiceAccount", "web-ui"),
        ("ConfigMap", None),
        ("BackendConfig", "web-ui"),
        ("ManagedCertificate", "web-ui"),
        ("Service", "web-ui"),
        ("Deployment", "tf-serving"),
    ],
)
def test_every_reference_must_exist_in_the_render(gke, kind, name):
    victim = next(obj for obj in gke if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name))
    gke.remove(victim)
    problems = policy.check_references(gke)
    assert problems and all(f"refers to {kind} {victim['metadata']['name']!r}" in p for p in problems), problems


def test_a_missing_claim_is_reported(renders):
    local = copy.deepcopy(renders["overlays/local"])
    local.remove(find(local, "PersistentVolumeClaim", "mnist-storage"))
    problems = policy.check_references(local)
    assert len(problems) == 5 and all("PersistentVolumeClaim 'mnist-storage'" in p for p in problems)


def test_a_service_selecting_nothing_is_reported(gke):
    find(gke, "Service", "tf-serving")["spec"]["selector"] = {"app.kubernetes.io/name": "tf-server"}
    assert "matches no pod" in only(policy.check_selectors(gke))


def test_service_target_ports_must_be_container_ports(gke):
    find(gke, "Service", "tf-serving")["spec"]["ports"][1]["targetPort"] = "http"
    assert "target 'http' is not a container port" in only(policy.check_ports(gke))


def test_flags_probes_and_addresses_must_agree_on_ports(gke):
    serving = container_of(gke, "Deployment", "tf-serving")
    serving["args"] = [arg.replace("--rest_api_port=8501", "--rest_api_port=8601") for arg in serving["args"]]
    assert "--rest_api_port=8601" in only(policy.check_ports(gke))

    ui = container_of(gke, "Deployment", "web-ui")
    serving["args"] = [arg.replace("8601", "8501") for arg in serving["args"]]
    next(v for v in ui["env"] if v["name"] == "SERVING_GRPC_ADDRESS")["value"] = "tf-serving:9000"
    assert "Service tf-serving has no port 9000" in only(policy.check_ports(gke))

    next(v for v in ui["env"] if v["name"] == "SERVING_GRPC_ADDRESS")["value"] = "tf-serving:8500"
    next(v for v in ui["env"] if v["name"] == "UI_PORT")["value"] = "8081"
    assert "UI_PORT=8081" in only(policy.check_ports(gke))

    next(v for v in ui["env"] if v["name"] == "UI_PORT")["value"] = "8080"
    ui["readinessProbe"]["httpGet"]["port"] = 8081
    assert "readinessProbe port 8081" in only(policy.check_ports(gke))


def test_pod_monitoring_ports_must_exist(gke):
    find(gke, "PodMonitoring", "web-ui")["spec"]["endpoints"][0]["port"] = "prometheus"
    assert "port 'prometheus'" in only(policy.check_ports(gke))


def test_only_writers_mount_storage_writable(gke):
    mount = next(m for m in container_of(gke, "Deployment", "tf-serving")["volumeMounts"] if m["name"] == "storage")
    mount["readOnly"] = False
    assert "Deployment/tf-serving" in only(policy.check_storage_writers(gke))


@pytest.mark.parametrize(
    "value, expected", [("250m", 0.25), ("2", 2.0), ("512Mi", 512 * 2**20), ("1Gi", 2**30), ("1.5", 1.5)]
)
def test_quantities(value, expected):
    assert policy.quantity(value) == expected


def test_a_bad_quantity_is_an_error():
    with pytest.raises(ValueError):
        policy.quantity("1 gig")
