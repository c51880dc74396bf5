"""The receiver: only signed, fresh, well-formed, reasonably sized live events are stored, once."""

from __future__ import annotations

import logging
import time

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from jofi_pipeline.cli import app as cli
from jofi_pipeline.webhooks.app import MAX_BODY_BYTES, PATH, build_app
from jofi_pipeline.warehouse import ModePaths
from jofi_pipeline.webhooks.inbox import Inbox
from jofi_pipeline_tests.webhooks.helpers import SECRET, event_body, signature

TAKER = {"object": "test_taker", "id": 2301234567, "first_name": "Linda"}


@pytest.fixture
def inbox(tmp_path):
    with Inbox.open(ModePaths(tmp_path, "live").inbox) as box:
        yield box


@pytest.fixture
def client(inbox):
    return TestClient(build_app(SECRET, inbox))


def post(client, body: bytes, sig: str | None = "sign", **headers):
    if sig == "sign":
        sig = signature(body)
    if sig is not None:
        headers["JOFI-Signature"] = sig
    return client.post(PATH, content=body, headers=headers)


def stored(inbox) -> tuple[int, list]:
    return inbox.event_count(), inbox.unapplied()


def test_a_signed_event_is_stored_with_the_id_it_names(client, inbox):
    response = post(client, event_body("test_taker.created", TAKER))
    assert response.status_code == 200 and response.json() == {"received": True, "id": "evt_0001", "duplicate": False}
    count, pending = stored(inbox)
    assert count == 1
    assert [(p.entity, p.object_id, p.source) for p in pending] == [("test_takers", "2301234567", "event")]


def test_a_duplicate_delivery_is_stored_once(client, inbox):
    body = event_body("invitation.created", {"object": "invitation", "id": 42})
    assert post(client, body).json()["duplicate"] is False
    again = post(client, body, sig=signature(body, at=int(time.time()) - 5))  # a retry, signed anew
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert stored(inbox)[0] == 1 and len(stored(inbox)[1]) == 1


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("unsigned", 401),
        ("wrong secret", 401),
        ("body tampered after signing", 401),
        ("stale (replayed 6 minutes later)", 401),
        ("from the future", 401),
        ("malformed header", 400),
        ("header without v1", 400),
    ],
)
def test_forged_stale_or_malformed_signatures_are_rejected_and_write_nothing(client, inbox, case, status):
    body = event_body("test_taker.created", TAKER)
    now = int(time.time())
    sig = {
        "unsigned": None,
        "wrong secret": signature(body, secret="whsec_attacker"),
        "body tampered after signing": signature(body.replace(b"2301234567", b"2301234568")),
        "stale (replayed 6 minutes later)": signature(body, at=now - 360),
        "from the future": signature(body, at=now + 360),
        "malformed header": "sha256=abc",
        "header without v1": f"t={now}",
    }[case]
    response = post(client, body, sig=sig)
    assert response.status_code == status, response.text
    assert SECRET not in response.text
    assert stored(inbox) == (0, [])


def test_oversized_bodies_are_refused_before_reading_or_while_streaming(client, inbox):
    big = event_body("test_taker.created", {**TAKER, "pad": "x" * MAX_BODY_BYTES})
    assert post(client, big).status_code == 413

    def chunks():  # no Content-Length: counted while reading
        for _ in range(5):
            yield b"x" * (MAX_BODY_BYTES // 4)

    response = client.post(PATH, content=chunks(), headers={"JOFI-Signature": signature(b"")})
    assert response.status_code == 413
    assert stored(inbox) == (0, [])


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        event_body("test_taker.created", TAKER, event_id="no_prefix"),
        event_body("test_taker.created", {"object": "test_taker", "id": "2301234567"}),
        event_body("test_taker.created", TAKER, mode="test"),
    ],
    ids=["not-json", "not-an-object", "bad-event-id", "string-test-taker-id", "test-mode-event"],
)
def test_signed_but_unusable_bodies_are_400_and_write_nothing(client, inbox, body):
    response = post(client, body)
    assert response.status_code == 400
    assert stored(inbox) == (0, [])


def test_test_mode_events_are_refused_with_a_live_only_explanation(client):
    response = post(client, event_body("test_taker.created", TAKER, mode="test"))
    assert "live-only" in response.json()["error"]


def test_an_unknown_event_type_is_kept_but_names_no_ids(client, inbox):
    assert post(client, event_body("test_taker.deleted", TAKER)).status_code == 200
    assert stored(inbox) == (1, [])


def test_only_post_on_the_webhook_path(client):
    assert client.get(PATH).status_code == 405
    assert client.get("/healthz").json() == {"status": "ok"}


def test_the_secret_never_reaches_logs(client, caplog):
    caplog.set_level(logging.DEBUG)
    body = event_body("test_taker.created", TAKER)
    post(client, body)
    post(client, body, sig=signature(body, secret="whsec_attacker"))
    post(client, body, sig=signature(body, at=int(time.time()) - 999))
    assert caplog.records and SECRET not in caplog.text


def test_no_secret_no_receiver(tmp_path, monkeypatch, inbox):
    with pytest.raises(ValueError):
        build_app("", inbox)
    monkeypatch.delenv("JOFI_WEBHOOK_SECRET", raising=False)
    result = CliRunner().invoke(cli, ["webhooks", "--port", "0", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "JOFI_WEBHOOK_SECRET is not set" in result.output and "live-only" in result.output
