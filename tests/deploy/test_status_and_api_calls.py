"""`status` beyond "present" (Ingress address, certificate, autoscalers), and the new calls of
the API layer (dry run, create/replace conflicts, listing an ApplySet's members, events)."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ConflictError

from mnist_deploy import deploy, observed
from mnist_deploy.cluster import FIELD_MANAGER, KubeCluster
from mnist_deploy.errors import Conflict
from tests.deploy.fake_cluster import FakeCluster
from tests.deploy.renders import find
from tests.deploy.test_cluster_and_cli import FakeDynamic, Result


def test_status_shows_the_address_the_certificate_and_the_autoscalers(renders):
    objects = renders["overlays/gke"]
    cluster = FakeCluster(existing=objects)
    cluster.objects["Ingress/web-ui"]["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}
    cluster.objects["ManagedCertificate/web-ui"]["status"] = {
        "certificateStatus": "Provisioning",
        "domainStatus": [{"domain": "mnist.example.com", "status": "FailedNotVisible"}],
    }
    autoscalers = [obj for obj in objects if obj["kind"] == "HorizontalPodAutoscaler"]
    assert autoscalers
    for index, hpa in enumerate(autoscalers):
        cluster.objects[f"HorizontalPodAutoscaler/{hpa['metadata']['name']}"]["status"] = {
            "currentReplicas": 2 + index,
            "desiredReplicas": 3 + index,
        }
    rows = {name: state for name, _, state in deploy.status(cluster, objects)}
    assert rows["Ingress/web-ui"] == "address 203.0.113.7"
    assert rows["ManagedCertificate/web-ui"] == "Provisioning (mnist.example.com FailedNotVisible)"
    for index, hpa in enumerate(autoscalers):
        spec = hpa["spec"]
        assert rows[f"HorizontalPodAutoscaler/{hpa['metadata']['name']}"] == (
            f"{2 + index} current, {3 + index} desired replicas (min {spec.get('minReplicas', 1)}, max {spec['maxReplicas']})"
        )


def test_states_before_the_controllers_report():
    assert observed.ingress_state({"kind": "Ingress"}).startswith("no address yet")
    assert observed.certificate_state({"kind": "ManagedCertificate"}).startswith("no status yet")
    hpa = {
        "kind": "HorizontalPodAutoscaler",
        "spec": {"minReplicas": 2, "maxReplicas": 5},
        "status": {
            "currentReplicas": 5,
            "desiredReplicas": 5,
            "conditions": [
                {"type": "ScalingLimited", "status": "True", "reason": "TooManyReplicas"},
                {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric"},
            ],
        },
    }
    assert observed.autoscaler_state(hpa) == (
        "5 current, 5 desired replicas (min 2, max 5); "
        "ScalingLimited=True: TooManyReplicas; ScalingActive=False: FailedGetResourceMetric"
    )
    assert observed.observed_state({"kind": "Service"}) == "present"


# --------------------------------------------------------------------- API layer ----------


def test_the_dry_run_asks_the_server_to_store_nothing(renders):
    dynamic = FakeDynamic()
    cluster = KubeCluster(None, dynamic_client=dynamic, core_api=object())
    cluster.apply(find(renders["overlays/local"], "Deployment", "web-ui"), dry_run=True)
    ((_, _, _, options),) = dynamic.calls
    assert options == {"field_manager": FIELD_MANAGER, "force_conflicts": True, "dry_run": "All"}


def test_a_409_on_create_or_replace_is_a_conflict():
    conflict = ApiException(status=409, reason="Conflict")
    conflict.body = json.dumps({"message": 'leases.coordination.k8s.io "mnist-deploy" already exists'})
    conflict.headers = {}

    class Refusing(FakeDynamic):
        def create(self, resource, body=None, namespace=None):
            raise ConflictError(conflict)

        replace = create

    cluster = KubeCluster(None, dynamic_client=Refusing(known_kinds=("Lease",)), core_api=object())
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "mnist-deploy", "namespace": "mnist"},
    }
    with pytest.raises(Conflict, match="already exists"):
        cluster.create(lease)
    with pytest.raises(Conflict):
        cluster.replace(lease)


def test_members_are_listed_by_group_and_kind_with_their_kind_filled_in():
    class Resource:
        def __init__(self, group, version, kind, namespaced, preferred):
            self.group, self.kind, self.namespaced, self.preferred = group, kind, namespaced, preferred
            self.group_version = f"{group}/{version}" if group else version

    class Listing(FakeDynamic):
        def __init__(self):
            super().__init__()
            self.resources.search = lambda group, kind: [
                resource
                for resource in (
                    Resource("autoscaling", "v1", "HorizontalPodAutoscaler", True, False),
                    Resource("autoscaling", "v2", "HorizontalPodAutoscaler", True, True),
                    Resource("", "v1", "Namespace", False, True),
                )
                if resource.kind == kind
            ]

        def get(self, resource, name=None, namespace=None, label_selector=None):
            self.calls.append(("get", resource.group_version, namespace, label_selector))
            return Result({"items": [{"metadata": {"name": "x"}}]})

    dynamic = Listing()
    cluster = KubeCluster(None, dynamic_client=dynamic, core_api=object())
    listed = cluster.list_labelled("HorizontalPodAutoscaler.autoscaling", "mnist", "a=b")
    assert listed == [{"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"}}]
    assert cluster.list_labelled("Namespace", "mnist", "a=b")[0]["apiVersion"] == "v1"
    assert dynamic.calls == [("get", "autoscaling/v2", "mnist", "a=b"), ("get", "v1", None, "a=b")]  # cluster-wide
    assert cluster.list_labelled("TFJob.kubeflow.org", "mnist", "a=b") == []  # the CRD is gone
