"""In the cluster every Python service logs JSON lines (LOG_FORMAT=json, mnist_common.logs) for
Cloud Logging, and the web UI writes its access log."""

from __future__ import annotations

import pytest

from tests.deploy.renders import TARGETS

OUR_COMMANDS = {"mnist-data", "mnist-train", "mnist-export", "gunicorn"}


def our_containers(objects):
    for obj in objects:
        spec = obj.get("spec", {})
        templates = [spec.get("template")] + [r.get("template") for r in spec.get("tfReplicaSpecs", {}).values()]
        for template in filter(None, templates):
            for container in template["spec"]["containers"]:
                if set(container.get("command", [])[:1]) & OUR_COMMANDS:
                    yield container


@pytest.mark.parametrize("target", TARGETS)
def test_every_python_service_logs_json_in_the_cluster(renders, target):
    containers = list(our_containers(renders[target]))
    assert len(containers) >= 4
    for container in containers:
        env = {item["name"]: item.get("value") for item in container.get("env", [])}
        assert env.get("LOG_FORMAT") == "json", container["name"]
        if container["command"][0] == "gunicorn":
            assert env.get("WEB_ACCESS_LOG") == "1"
