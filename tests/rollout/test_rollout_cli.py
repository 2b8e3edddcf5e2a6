"""The rollout commands without a running model server (files only), as make export / make serve
use them, and the exporter's retention keeping the versions a rollout serves."""

from __future__ import annotations

from mnist_rollout import cli

from mnist_common.rollout import state as rollout_state
from mnist_exporter import versions


def publish_folder(base, version):
    (base / str(version)).mkdir(parents=True)
    (base / str(version) / "saved_model.pb").write_bytes(b"")


def run(tmp_path, *args):
    return cli.main(
        [
            *args,
            "--state-file",
            str(tmp_path / "rollout.json"),
            "--model-config-file",
            str(tmp_path / "models.config"),
            "--model-base-path",
            str(tmp_path / "models"),
            "--rest-url",
            "http://127.0.0.1:9",
            "--metrics-url",
            "http://127.0.0.1:9/metrics",
        ]
    )


def test_publishing_makes_the_first_version_stable_and_later_ones_canary(tmp_path, capsys):
    base = tmp_path / "models"
    publish_folder(base, 1)
    assert run(tmp_path, "publish") == 0
    publish_folder(base, 2)
    assert run(tmp_path, "publish", "--percent", "10") == 0
    state = rollout_state.read(str(tmp_path / "rollout.json"))
    assert (state.stable, state.canary, state.canary_percent, state.generation) == (1, 2, 10, 2)
    config = (tmp_path / "models.config").read_text()
    assert "versions: 1" in config and "versions: 2" in config and 'key: "canary" value: 2' in config
    assert "stable v1 at 90 %, canary v2 at 10 %" in capsys.readouterr().out


def test_init_keeps_an_existing_state_and_refuses_one_naming_a_missing_version(tmp_path, capsys):
    base = tmp_path / "models"
    publish_folder(base, 1)
    publish_folder(base, 2)
    rollout_state.write(str(tmp_path / "rollout.json"), rollout_state.RolloutState(stable=1), None)
    assert run(tmp_path, "init") == 0
    assert rollout_state.read(str(tmp_path / "rollout.json")).stable == 1  # not the newest: kept
    rollout_state.write(str(tmp_path / "rollout.json"), rollout_state.RolloutState(stable=7), None)
    assert run(tmp_path, "init") == 2
    assert "v7, not published" in capsys.readouterr().err


def test_bad_input_is_exit_2_naming_it(tmp_path, capsys):
    publish_folder(tmp_path / "models", 1)
    assert run(tmp_path, "publish") == 0
    assert run(tmp_path, "canary", "--model-version", "5") == 2
    assert "version 5 is not published" in capsys.readouterr().err
    assert run(tmp_path, "canary", "--model-version", "x") == 2
    assert "VERSION='x'" in capsys.readouterr().err
    (tmp_path / "rollout.json").write_text("{}")
    assert run(tmp_path, "status") == 2
    assert "rollout.json: schema must be 1" in capsys.readouterr().err


def test_retention_keeps_the_versions_the_rollout_names(tmp_path, capsys):
    base = tmp_path / "models"
    for version in range(1, 6):
        publish_folder(base, version)
    rollout_state.write(
        str(tmp_path / "rollout.json"), rollout_state.RolloutState(stable=1, canary=5, canary_percent=10), None
    )
    assert run(tmp_path, "versions") == 0
    protect = tuple(int(v) for v in capsys.readouterr().out.split())
    assert protect == (1, 5)
    assert versions.apply_retention(str(base), 2, protect) == [2, 3]
    assert versions.published_versions(str(base)) == [1, 4, 5]
