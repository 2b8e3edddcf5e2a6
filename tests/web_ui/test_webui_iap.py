"""With IAP_AUDIENCE set, only requests carrying a valid IAP assertion get through.

Assertions are signed here with a locally generated ES256 key (what IAP uses); the app's key
source is replaced by one holding its public half, so nothing goes to the network.
"""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.auth import crypt, jwt

from mnist_webui import create_app
from mnist_webui.config import Settings, settings_from_env
from mnist_webui.iap import ASSERTION_HEADER, IAP_ISSUER

AUDIENCE = "/projects/123456/global/backendServices/987654"
KEY_ID = "local-test-key"
PIXELS = {"pixels": [0.0] * 784}


def es256_key() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh P-256 key."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


class LocalKeys:
    """Stands in for Google's published keys; counts how often they are asked for."""

    def __init__(self, keys: dict[str, str]):
        self.keys = keys
        self.asked = 0

    def get(self, key_id):
        self.asked += 1
        return self.keys


@pytest.fixture(scope="module")
def signing_key():
    return es256_key()


def assertion(private_pem: str, key_id: str = KEY_ID, **claims) -> str:
    now = int(time.time())
    payload = {
        "iss": IAP_ISSUER,
        "aud": AUDIENCE,
        "sub": "accounts.google.com:1",
        "email": "a@example.com",
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    signer = crypt.ES256Signer.from_string(private_pem, key_id)
    return jwt.encode(signer, payload).decode()


@pytest.fixture
def iap_client(fake_client, held_out, signing_key):
    keys = LocalKeys({KEY_ID: signing_key[1]})
    app = create_app(
        {
            "MNIST_SETTINGS": Settings(iap_audience=AUDIENCE),
            "MNIST_CLIENT": fake_client,
            "MNIST_DIGITS": held_out,
            "MNIST_IAP_KEYS": keys,
            "TESTING": True,
        }
    )
    return app.test_client()


def refused(response, status: int) -> str:
    assert response.status_code == status, response.data[:300]
    body = response.get_json()
    assert body["status"] == status and isinstance(body["error"], str)
    return body["error"]


def test_a_valid_assertion_gets_through(iap_client, signing_key):
    headers = {ASSERTION_HEADER: assertion(signing_key[0])}
    assert iap_client.post("/api/v1/predict", json=PIXELS, headers=headers).status_code == 200
    assert iap_client.get("/", headers=headers).status_code == 200


@pytest.mark.parametrize("path", ["/", "/api/v1/model", "/api/v1/sample", "/metrics", "/static/app.js"])
def test_no_assertion_is_401(iap_client, path):
    assert ASSERTION_HEADER in refused(iap_client.get(path), 401)


def test_no_assertion_on_predict_is_401(iap_client, fake_client):
    refused(iap_client.post("/api/v1/predict", json=PIXELS), 401)
    assert fake_client.predicted == []  # nothing reached the model


@pytest.mark.parametrize(
    "case", ["expired", "other audience", "other key", "not IAP's issuer", "not yet valid", "garbage", "unsigned"]
)
def test_an_invalid_assertion_is_403(iap_client, signing_key, case):
    now = int(time.time())
    other_private, _ = es256_key()
    token = {
        "expired": lambda: assertion(signing_key[0], iat=now - 1200, exp=now - 600),
        "other audience": lambda: assertion(signing_key[0], aud="/projects/1/global/backendServices/2"),
        "other key": lambda: assertion(other_private),  # same key id, signed by someone else
        "not IAP's issuer": lambda: assertion(signing_key[0], iss="https://accounts.google.com"),
        "not yet valid": lambda: assertion(signing_key[0], iat=now + 600, exp=now + 1200),
        "garbage": lambda: "not.a.jwt",
        "unsigned": lambda: assertion(signing_key[0]).rsplit(".", 1)[0] + ".",
    }[case]()
    reason = refused(iap_client.post("/api/v1/predict", json=PIXELS, headers={ASSERTION_HEADER: token}), 403)
    assert AUDIENCE not in reason and "Token" not in reason  # our words, and the audience stays private


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_checks_need_no_assertion(iap_client, path):
    # The load balancer's health checks do not pass through IAP.
    assert iap_client.get(path).status_code == 200


def test_iap_is_off_without_an_audience(client):
    assert client.post("/api/v1/predict", json=PIXELS).status_code == 200
    assert settings_from_env({}).iap_audience == ""
    assert settings_from_env({"IAP_AUDIENCE": AUDIENCE}).iap_audience == AUDIENCE


def test_required_iap_without_an_audience_refuses_all_but_health_checks(fake_client, held_out):
    app = create_app(
        {
            "MNIST_SETTINGS": Settings(iap_required=True),
            "MNIST_CLIENT": fake_client,
            "MNIST_DIGITS": held_out,
            "TESTING": True,
        }
    )
    client = app.test_client()
    assert "IAP audience is not configured" in refused(client.get("/"), 503)
    assert "IAP audience is not configured" in refused(
        client.post("/api/v1/predict", json={"pixels": [[0.0] * 28] * 28}), 503
    )
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200


def test_iap_required_is_read_from_the_environment():
    assert settings_from_env({"IAP_REQUIRED": "1"}).iap_required is True
    assert settings_from_env({}).iap_required is False
