"""Who may write: bearer tokens made by `flask tokens`, stored as hashes, revoked at once everywhere; reads public or
not by APP_PUBLIC_READS; /health/detailed only with a token. Against the real PostgreSQL (and SQLite for the
shapes)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.app.conftest import token_client


def anonymous(app) -> FlaskClient:
    return FlaskClient(app, app.response_class, use_cookies=False)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer notes_x",
                                    "Bearer notes_" + "a" * 200, "Bearer notes_\u00e9", "Token abc"])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_without_a_valid_token_are_401_json(app, header, method):
    headers = {} if header is None else {"Authorization": header}
    response = anonymous(app).open("/api/notes" if method == "POST" else "/api/notes/1", method=method,
                                   json={"title": "x"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["error"] == "unauthorized" and "flask tokens create" in response.json["message"]
    assert response.json["request_id"] == response.headers["X-Request-ID"]


def test_the_token_is_checked_before_the_body(app):
    """A stranger learns nothing about the schema: 401, not 422."""
    assert anonymous(app).post("/api/notes", json={"nope": 1}).status_code == 401
    assert anonymous(app).post("/api/notes", data="[" * 1000, content_type="application/json").status_code == 401
    assert anonymous(app).post("/api/notes", data="x", content_type="text/plain").status_code == 401


def test_reads_are_public_by_default_and_private_by_setting(monkeypatch, app):
    assert anonymous(app).get("/api/notes").status_code == 200
    assert "security" not in app.test_client().get("/api/openapi.json").json["paths"]["/api/notes"]["get"]
    monkeypatch.setenv("APP_PUBLIC_READS", "false")
    from webapp import create_app, tokens
    from webapp.database import db

    private = create_app("testing")
    with private.app_context():
        db.create_all(bind_key=None)
        token = tokens.create("reader")
    assert anonymous(private).get("/api/notes").status_code == 401
    assert anonymous(private).get("/api/notes/1").status_code == 401
    assert anonymous(private).get("/api/notes", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    spec = anonymous(private).get("/api/openapi.json").json
    assert spec["paths"]["/api/notes"]["get"]["security"] == [{"BearerAuth": []}]


def test_the_token_is_shown_once_and_stored_as_a_hash(pg_app, postgres):
    primary, _ = postgres
    runner = pg_app.test_cli_runner()
    made = runner.invoke(args=["tokens", "create", "ci-deploy"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("notes_") and len(token) >= 40
    with primary.connect(pg_app.config["SQLALCHEMY_DATABASE_URI"].rsplit("/", 1)[1].split("?")[0]) as connection:
        rows = connection.execute("SELECT name, token_hash, last_used_at FROM api_tokens WHERE name = 'ci-deploy'")
        name, stored, last_used = rows.fetchone()
    assert stored != token and len(stored) == 64 and token not in stored and last_used is None
    listing = runner.invoke(args=["tokens", "list"])
    assert "ci-deploy\tcreated " in listing.output and token not in listing.output
    assert "last used -" in listing.output.split("ci-deploy", 1)[1].splitlines()[0]
    client = anonymous(pg_app)
    assert client.post("/api/notes", json={"title": "x"}, headers={"Authorization": f"Bearer {token}"}).status_code \
        == 201
    listing = runner.invoke(args=["tokens", "list"])
    assert "last used -" not in listing.output.split("ci-deploy", 1)[1].splitlines()[0]


@pytest.mark.parametrize("name,problem", [("Bad Name", "lowercase letters"), ("", "lowercase letters"),
                                          ("x" * 64, "1-63"), ("tests", "exists")])
def test_token_commands_refuse_in_one_line(pg_app, name, problem):
    result = pg_app.test_cli_runner().invoke(args=["tokens", "create", name])
    assert result.exit_code == 1 and problem in result.output and "Traceback" not in result.output
    missing = pg_app.test_cli_runner().invoke(args=["tokens", "revoke", "never-made"])
    assert missing.exit_code == 1 and "no token named 'never-made'" in missing.output


def test_a_revoked_token_fails_at_once_in_every_process(pg_env, postgres):
    """Two apps stand for two workers (or tasks): a revocation made through one is refused by both at the next
    request, without a restart or a cache to expire."""
    from webapp import create_app

    first, second = create_app("testing"), create_app("testing")
    token = first.test_cli_runner().invoke(args=["tokens", "create", "leaked"]).stdout.strip().splitlines()[-1]
    for app in (first, second):
        app.test_client_class = token_client(token)
        assert app.test_client().post("/api/notes", json={"title": "before"}).status_code == 201
    assert second.test_cli_runner().invoke(args=["tokens", "revoke", "leaked"]).exit_code == 0
    for app in (first, second):
        refused = app.test_client().post("/api/notes", json={"title": "after"})
        assert refused.status_code == 403 and "revoked" in refused.json["message"]
        assert app.test_client().get("/api/notes").status_code == 200  # public reads go on


def test_detailed_health_needs_a_token_and_liveness_says_nothing(pg_app, postgres):
    client = anonymous(pg_app)
    assert client.get("/health").json == {"status": "ok"}
    refused = client.get("/health/detailed")
    assert refused.status_code == 401 and "checks" not in refused.json
    assert pg_app.test_client().get("/health/detailed").status_code == 200  # the fixture's token


def test_detailed_health_with_the_database_down_reports_it_without_details(pg_app, postgres):
    primary, replica = postgres
    pg_app.config["HEALTH_CACHE_SECONDS"] = 0
    primary.stop()
    replica.stop()
    try:
        response = pg_app.test_client().get("/health/detailed")
    finally:
        primary.start()
        replica.start()
    assert response.status_code == 503 and response.json == {"status": "fail", "failed": ["database"], "checks": {}}
