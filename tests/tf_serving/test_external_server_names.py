"""The contract suite's external server is named as the web UI names it; the old names still
work for one release, with a warning naming the new ones."""

from __future__ import annotations

from tests.tf_serving.external_server import external_server


def test_the_web_ui_names_select_an_external_server(capsys):
    given = external_server({"SERVING_REST_URL": "http://h:8501", "SERVING_GRPC_ADDRESS": "h:8500"})
    assert given == ("http://h:8501", "h:8500")
    assert capsys.readouterr().err == ""


def test_the_old_names_still_work_with_a_warning(capsys):
    assert external_server({"SERVING_URL": "http://h:8501", "SERVING_GRPC": "h:8500"}) == ("http://h:8501", "h:8500")
    err = capsys.readouterr().err
    assert "SERVING_URL is deprecated" in err and "SERVING_REST_URL" in err
    assert "SERVING_GRPC is deprecated" in err and "SERVING_GRPC_ADDRESS" in err


def test_nothing_given_means_a_fresh_stand_in():
    assert external_server({}) is None
