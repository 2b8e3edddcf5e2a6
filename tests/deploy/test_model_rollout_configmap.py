"""The rollout state on the cluster: the ConfigMap model-rollout in the renders (mounted whole by
TF Serving and the web UI, the `latest` policy until the first rollout), created by the first
deploy and kept by every later one."""

from __future__ import annotations

import re

import pytest

from mnist_common.rollout import configmap
from mnist_common.rollout import state as rollout_state
from mnist_deploy import apply, deploy
from mnist_deploy.waiting import Poller
from tests.deploy.fake_cluster import FakeCluster
from tests.deploy.renders import REPO_ROOT, TARGETS, find


@pytest.fixture
def poller(clock, lines):
    return Poller(interval=5, clock=clock.clock, sleep=clock.sleep, report=lines.append, wall=clock.wall)


def mount_of(pod_spec: dict, container: dict, config_map: str) -> dict:
    [volume] = [v for v in pod_spec["volumes"] if (v.get("configMap") or {}).get("name") == config_map]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    return mount


@pytest.mark.parametrize("target", TARGETS)
def test_tf_serving_and_the_web_ui_mount_the_rollout_configmap_whole(renders, target):
    objects = renders[target]
    rollout = find(objects, "ConfigMap", configmap.NAME)
    assert rollout["metadata"]["annotations"][apply.APPLY_ANNOTATION] == apply.CREATE_ONLY
    serving_spec = find(objects, "Deployment", "tf-serving")["spec"]["template"]["spec"]
    serving = serving_spec["containers"][0]
    mount = mount_of(serving_spec, serving, configmap.NAME)
    # No subPath: only a whole-volume mount sees the kubelet's updates of a ConfigMap.
    assert "subPath" not in mount and mount["readOnly"] is True
    assert f"--model_config_file={mount['mountPath']}/{configmap.MODELS_CONFIG}" in serving["args"]
    poll = [a for a in serving["args"] if a.startswith("--model_config_file_poll_wait_seconds=")]
    assert poll and int(poll[0].split("=")[1]) > 0
    ui_spec = find(objects, "Deployment", "web-ui")["spec"]["template"]["spec"]
    ui = ui_spec["containers"][0]
    ui_mount = mount_of(ui_spec, ui, configmap.NAME)
    assert "subPath" not in ui_mount
    env = {e["name"]: e.get("value") for e in ui["env"]}
    assert env["ROLLOUT_FILE"] == f"{ui_mount['mountPath']}/{configmap.ROLLOUT_JSON}"


def test_before_any_rollout_the_cluster_serves_as_before(renders):
    rollout = find(renders["overlays/local"], "ConfigMap", configmap.NAME)
    # Today's config, from its one copy; no rollout.json, so the web UI sends no label.
    shipped = (REPO_ROOT / "services" / "tf-serving" / "config" / "models.config").read_text()
    assert rollout["data"] == {configmap.MODELS_CONFIG: shipped}
    assert re.search(r"latest\s*{\s*num_versions:\s*1", shipped)
    assert re.search(r'base_path:\s*"([^"]+)"', shipped).group(1) == configmap.BASE_PATH
    assert configmap.read_data(rollout["data"]) == (None, [])


def test_a_re_deploy_keeps_the_configmap_the_rollout_changed(renders, poller, lines):
    objects = renders["overlays/local"]
    cluster = FakeCluster()
    deploy.deploy(cluster, objects, poller)
    key = f"ConfigMap/{configmap.NAME}"
    assert key in cluster.applied()  # created by the first deploy
    rolled_out = configmap.manifest(rollout_state.RolloutState(stable=3, canary=4, canary_percent=10), [3, 4], "mnist")
    cluster.objects[key]["data"] = rolled_out["data"]
    cluster.events.clear()
    deploy.deploy(cluster, objects, poller)
    assert key not in cluster.applied()
    assert cluster.objects[key]["data"] == rolled_out["data"]
    assert any(f"{key}: exists, kept" in line for line in lines)


def test_the_state_in_the_configmap_is_schema_checked():
    with pytest.raises(rollout_state.RolloutStateError, match="rollout.json"):
        configmap.read_data({configmap.ROLLOUT_JSON: '{"schema": 1, "stable": 0}'})
    with pytest.raises(rollout_state.RolloutStateError, match="published.json"):
        configmap.read_data({configmap.PUBLISHED_JSON: '{"versions": "1"}'})
