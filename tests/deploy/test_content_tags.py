"""Images tagged by content: a web-UI-only change gives the web UI a new tag and leaves the
rendered data/train/export Job specs byte-identical (so the cluster does not retrain)."""

from __future__ import annotations

import os
import shutil
import subprocess

import yaml

from mnist_deploy import content_tags, render
from tests.deploy.renders import KUSTOMIZE, REPO_ROOT, TEST_SETTINGS


def make_repo(tmp_path):
    """A git work tree with the real Dockerfiles and the folders they copy (a few files each)."""
    root = tmp_path / "repo"
    for folder in ("trainer", "model-exporter", "web-ui"):
        (root / "services" / folder).mkdir(parents=True)
        shutil.copy(REPO_ROOT / "services" / folder / "Dockerfile", root / "services" / folder / "Dockerfile")
        (root / "services" / folder / "code.py").write_text(f"# {folder}\n")
    (root / "libs" / "mnist_common").mkdir(parents=True)
    (root / "libs" / "mnist_common" / "shared.py").write_text("# shared\n")
    (root / "requirements").mkdir()
    shutil.copy(REPO_ROOT / "requirements" / "constraints.txt", root / "requirements" / "constraints.txt")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def jobs_and_images(tags, kubectl) -> tuple[str, set[str]]:
    images = {name: f"registry.example/mnist/{name}:{tag}" for name, tag in tags.items()}
    objects = render.parse(render.render(os.fspath(KUSTOMIZE / "overlays" / "gke"), images, TEST_SETTINGS, kubectl))
    jobs = [o for o in objects if o["kind"] in ("Job", "TFJob")]
    assert jobs, "the overlay renders the data/train/export Jobs"
    web = [
        c["image"]
        for o in objects
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
        if "mnist-web-ui" in c["image"]
    ]
    return yaml.safe_dump_all(jobs, sort_keys=True), set(web)


def test_a_web_ui_only_change_changes_only_the_web_ui_image(tmp_path, kubectl):
    root = make_repo(tmp_path)
    before = content_tags.content_tags(os.fspath(root))
    (root / "services" / "web-ui" / "code.py").write_text("# the web UI's CSS changed\n")
    after = content_tags.content_tags(os.fspath(root))
    assert after["mnist-web-ui"] != before["mnist-web-ui"]
    assert {k: v for k, v in after.items() if k != "mnist-web-ui"} == {
        k: v for k, v in before.items() if k != "mnist-web-ui"
    }
    jobs_before, web_before = jobs_and_images(before, kubectl)
    jobs_after, web_after = jobs_and_images(after, kubectl)
    assert jobs_after == jobs_before
    assert web_before and web_after and web_before != web_after


def test_a_shared_library_change_changes_every_image(tmp_path):
    root = make_repo(tmp_path)
    before = content_tags.content_tags(os.fspath(root))
    (root / "libs" / "mnist_common" / "shared.py").write_text("# changed\n")
    after = content_tags.content_tags(os.fspath(root))
    assert all(after[name] != before[name] for name in before)


def test_copy_sources_skip_other_stages():
    text = "COPY a b\nCOPY --chown=1:1 c d /dst\nCOPY --from=build /opt/venv /opt/venv\n"
    assert content_tags.copy_sources(text) == ["a", "c", "d"]


def test_make_tags_each_image_by_its_content_unless_image_tag_is_set():
    def dry_run(*extra):
        return subprocess.run(
            ["make", "-s", "-n", "render", "OVERLAY=local", *extra],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout

    tags = content_tags.content_tags(os.fspath(REPO_ROOT))
    shown = dry_run()
    for name, tag in tags.items():
        assert f"--image {name}=mnist.local/{name}:{tag}" in shown
    assert "mnist-web-ui=mnist.local/mnist-web-ui:abc" in dry_run("IMAGE_TAG=abc")


def test_deploying_a_web_ui_only_change_reruns_no_job(tmp_path, kubectl):
    from mnist_deploy import deploy
    from mnist_deploy.waiting import Poller
    from tests.deploy.fake_cluster import FakeClock, FakeCluster

    root = make_repo(tmp_path)
    before = content_tags.content_tags(os.fspath(root))
    (root / "services" / "web-ui" / "code.py").write_text("# a web UI release\n")
    after = content_tags.content_tags(os.fspath(root))

    def objects(tags):
        images = {name: f"registry.example/mnist/{name}:{tag}" for name, tag in tags.items()}
        return render.parse(render.render(os.fspath(KUSTOMIZE / "overlays" / "local"), images, TEST_SETTINGS, kubectl))

    clock = FakeClock()
    poller = Poller(interval=5, clock=clock.clock, sleep=clock.sleep, report=lambda line: None)
    cluster = FakeCluster()
    deploy.deploy(cluster, objects(before), poller)
    cluster.events.clear()
    deploy.deploy(cluster, objects(after), poller)
    assert not [key for action, key in cluster.events if action == "delete"]
    assert not [key for key in cluster.applied() if key.startswith(("Job/", "TFJob/"))]
    web_ui = [o for o in cluster.objects.values() if o["kind"] == "Deployment" and o["metadata"]["name"] == "web-ui"]
    assert web_ui and web_ui[0]["spec"]["template"]["spec"]["containers"][0]["image"].endswith(after["mnist-web-ui"])
