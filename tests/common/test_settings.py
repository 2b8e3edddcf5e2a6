"""mnist_common.settings: one name per setting, old names accepted with a deprecation warning."""

from __future__ import annotations

import io

from mnist_common.settings import read_setting


def test_the_new_name_wins_silently():
    warnings = io.StringIO()
    assert (
        read_setting("TRAIN_DIR", "MODEL_DIR", environ={"TRAIN_DIR": "a", "MODEL_DIR": "b"}, warnings=warnings) == "a"
    )
    assert warnings.getvalue() == ""


def test_an_old_name_still_works_and_names_the_new_one():
    warnings = io.StringIO()
    assert read_setting("TRAIN_DIR", "MODEL_DIR", environ={"MODEL_DIR": "b"}, warnings=warnings) == "b"
    message = warnings.getvalue()
    assert "MODEL_DIR" in message and "deprecated" in message and "use TRAIN_DIR" in message


def test_empty_is_unset_and_the_default_applies():
    warnings = io.StringIO()
    assert (
        read_setting(
            "TRAIN_DIR", "MODEL_DIR", default="d", environ={"TRAIN_DIR": "", "MODEL_DIR": ""}, warnings=warnings
        )
        == "d"
    )
    assert read_setting("TRAIN_DIR", environ={}) is None
    assert warnings.getvalue() == ""


def test_the_warning_goes_to_stderr(capsys):
    assert read_setting("NEW", "OLD", environ={"OLD": "x"}) == "x"
    captured = capsys.readouterr()
    assert captured.out == "" and "use NEW" in captured.err
