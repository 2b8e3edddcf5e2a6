"""The autoscalers judge the serving containers' own CPU, not the pod's.

On GKE the Cloud Storage FUSE driver injects a `gke-gcsfuse-sidecar` into every pod of
`gcs-storage` (a native sidecar, an init container with restartPolicy Always, since GKE 1.29).
A `Resource` metric divides usage by the requests of all the pod's containers, "including
restartable init containers" (kubernetes/pkg/controller/podautoscaler/replica_calculator.go,
calculateRequests with no container named), so the sidecar's request dilutes the utilisation; a
`ContainerResource` metric names one container and uses its request alone.
"""

from __future__ import annotations

from tests.deploy.renders import find

AUTOSCALED = {"tf-serving": "tf-serving", "web-ui": "web-ui"}


def test_each_autoscaler_measures_its_serving_container(renders):
    with_autoscaling = 0
    for target, objects in renders.items():
        hpas = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "HorizontalPodAutoscaler"}
        if not hpas:
            continue
        with_autoscaling += 1
        assert set(hpas) == set(AUTOSCALED), target
        for name, hpa in hpas.items():
            deployment = find(objects, "Deployment", hpa["spec"]["scaleTargetRef"]["name"])
            containers = {c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]}
            (metric,) = hpa["spec"]["metrics"]
            assert metric["type"] == "ContainerResource", f"{target}: {name}"
            resource = metric["containerResource"]
            assert resource["container"] == AUTOSCALED[name] and resource["container"] in containers, (
                f"{target}: {name}"
            )
            assert resource["name"] == "cpu" and resource["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert with_autoscaling >= 2  # overlays/gke and the test combinations that list the component
