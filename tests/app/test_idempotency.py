"""Idempotency keys on the real PostgreSQL: a retried POST with the same key gets the first answer and makes no
second note, whether the first answer was lost, the two were sent at once, or the first met a database that was
down; the key is kept with the note in one transaction, per token, for 24 hours."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest


def count(postgres, database: str) -> int:
    primary, _ = postgres
    with primary.connect(database) as connection:
        return connection.execute("SELECT count(*) FROM notes").fetchone()[0]


@pytest.fixture
def database_name(pg_env):
    return pg_env["DATABASE_NAME"]


def test_a_retry_gets_the_first_answer_and_no_second_note(pg_app, postgres, database_name):
    client = pg_app.test_client()
    first = client.post("/api/notes", json={"title": "once"}, headers={"Idempotency-Key": "order-42"})
    again = client.post("/api/notes", json={"title": "once"}, headers={"Idempotency-Key": "order-42"})
    assert first.status_code == again.status_code == 201
    assert again.get_data() == first.get_data() and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert count(postgres, database_name) == 1
    other = client.post("/api/notes", json={"title": "once"}, headers={"Idempotency-Key": "order-43"})
    assert other.status_code == 201 and count(postgres, database_name) == 2
    without = [client.post("/api/notes", json={"title": "twice"}).status_code for _ in range(2)]
    assert without == [201, 201] and count(postgres, database_name) == 4  # no key: every POST is a new note


def test_the_key_goes_with_its_note(pg_app, postgres, database_name):
    client = pg_app.test_client()
    first = client.post("/api/notes", json={"title": "gone"}, headers={"Idempotency-Key": "k-del"})
    assert client.delete(first.headers["Location"]).status_code == 204
    again = client.post("/api/notes", json={"title": "gone"}, headers={"Idempotency-Key": "k-del"})
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert client.get(again.headers["Location"]).status_code == 200  # never a Location that points at nothing


def test_the_same_key_with_another_body_is_409_naming_the_header(pg_app):
    client = pg_app.test_client()
    assert client.post("/api/notes", json={"title": "a"}, headers={"Idempotency-Key": "k"}).status_code == 201
    refused = client.post("/api/notes", json={"title": "b"}, headers={"Idempotency-Key": "k"})
    assert refused.status_code == 409 and refused.json["error"] == "conflict"
    assert "Idempotency-Key was used with a different request" in refused.json["message"]


@pytest.mark.parametrize("key", ["", "a b", "x" * 256, "é", "tab\there"])
def test_a_malformed_key_is_422(pg_app, key):
    response = pg_app.test_client().post("/api/notes", json={"title": "a"},
                                         headers={"Idempotency-Key": key.encode("utf-8").decode("latin-1")})
    assert response.status_code == 422 and "Idempotency-Key" in response.json["fields"]


def test_the_same_key_sent_twice_at_once_makes_one_note(pg_app, postgres, database_name):
    barrier, answers = threading.Barrier(4), []

    def send():
        client = pg_app.test_client()
        barrier.wait()
        answers.append(client.post("/api/notes", json={"title": "race"}, headers={"Idempotency-Key": "race-1"}))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [a.status_code for a in answers] == [201] * 4
    assert len({a.get_data() for a in answers}) == 1 and count(postgres, database_name) == 1


def test_a_write_that_met_the_primary_down_is_retried_safely(pg_app, postgres, database_name):
    primary, _ = postgres
    client = pg_app.test_client()
    primary.stop()
    try:
        down = client.post("/api/notes", json={"title": "later"}, headers={"Idempotency-Key": "retry-me"})
    finally:
        primary.start()
    assert down.status_code == 503 and down.headers["Retry-After"]
    statuses = [client.post("/api/notes", json={"title": "later"}, headers={"Idempotency-Key": "retry-me"})
                .status_code for _ in range(2)]
    assert statuses == [201, 201] and count(postgres, database_name) == 1


def test_keys_are_per_token_and_forgotten_after_a_day(pg_app, postgres, database_name):
    from webapp import tokens

    from tests.app.conftest import token_client

    client = pg_app.test_client()
    assert client.post("/api/notes", json={"title": "a"}, headers={"Idempotency-Key": "shared"}).status_code == 201
    with pg_app.app_context():
        other = tokens.create("second-client")
    pg_app.test_client_class = token_client(other)
    assert pg_app.test_client().post("/api/notes", json={"title": "a"}, headers={"Idempotency-Key": "shared"})\
        .headers.get("Idempotent-Replayed") is None  # another client's key is its own
    primary, _ = postgres
    with primary.connect(database_name) as connection:
        connection.execute("UPDATE idempotency_keys SET created_at = %s", (datetime.now(UTC) - timedelta(hours=25),))
    later = pg_app.test_client().post("/api/notes", json={"title": "a"}, headers={"Idempotency-Key": "shared"})
    assert later.status_code == 201 and later.headers.get("Idempotent-Replayed") is None
    with primary.connect(database_name) as connection:  # the expired key went when the new one came
        assert connection.execute("SELECT count(*) FROM idempotency_keys").fetchone()[0] == 2
