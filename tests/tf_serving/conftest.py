"""Fixtures for the TF Serving contract suite.

The suite talks to a server given by SERVING_REST_URL (REST base URL, e.g. http://127.0.0.1:8501) and
SERVING_GRPC_ADDRESS (host:port) when they are set, so the same tests run against the real
tensorflow/serving image (`make serve-docker`). Otherwise each session starts the stand-in as a
subprocess on free ports over a model it trains and exports into pytest's tmp_path.
"""

from __future__ import annotations

import pathlib

import pytest

from tests.support.models import export_version, fit_tiny_model
from tests.tf_serving.external_server import external_server
from tests.tf_serving.serving_harness import MODEL_NAME, ServerUnderTest, publish, start_standin, wait_available


@pytest.fixture(scope="session")
def exported_version(tmp_path_factory, data_dir) -> pathlib.Path:
    """A real SavedModel: build_model(), one epoch on 1500 training digits, exported once."""
    model = fit_tiny_model(data_dir, digits=1500, epochs=1, seed=7)
    return pathlib.Path(export_version(model, tmp_path_factory.mktemp("export"), 1))


@pytest.fixture(scope="session")
def server(request, tmp_path_factory):
    """The server the contract suite checks: SERVING_REST_URL/SERVING_GRPC_ADDRESS, or a fresh stand-in."""
    given = external_server()
    if given:
        rest_url, grpc_target = given
        if not grpc_target:
            pytest.fail("SERVING_REST_URL is set but SERVING_GRPC_ADDRESS (host:port of the gRPC API) is not")
        external = ServerUnderTest(rest_url, grpc_target, None, standin=False)
        wait_available(external, timeout=30)
        yield external
        external.stop()
        return
    root = tmp_path_factory.mktemp("serving")
    base_path = root / "models" / MODEL_NAME
    base_path.mkdir(parents=True)
    publish(base_path, 1, request.getfixturevalue("exported_version"))
    # A models.config like the cluster's, plus a version label for the /labels/ routes.
    config_file = root / "models.config"
    config_file.write_text(
        "model_config_list {\n  config {\n"
        f'    name: "{MODEL_NAME}"\n    base_path: "{base_path}"\n    model_platform: "tensorflow"\n'
        "    model_version_policy { latest { num_versions: 1 } }\n"
        '    version_labels { key: "stable" value: 1 }\n'
        "  }\n}\n"
    )
    standin = start_standin(base_path, root / "standin.log", config_file)
    yield standin
    standin.stop()


@pytest.fixture
def standin_only(server):
    """For checks of the stand-in's own limits, which the real TF Serving does not have."""
    if not server.standin:
        pytest.skip("checks a stand-in limit (TF Serving itself has no such check)")
    return server
