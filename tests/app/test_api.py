"""The notes API, errors, security headers, request ids, ProxyFix and CSRF, on the testing app (SQLite)."""

import json

import pytest
from webapp import create_app


def test_crud(client):
    created = client.post("/api/notes", json={"title": "First", "body": "hello"})
    assert created.status_code == 201 and created.json["title"] == "First"
    note_id = created.json["id"]
    assert created.headers["Location"] == f"/api/notes/{note_id}"
    assert client.get(f"/api/notes/{note_id}").json["body"] == "hello"
    assert client.patch(f"/api/notes/{note_id}", json={"body": "changed"}).json["body"] == "changed"
    assert client.put(f"/api/notes/{note_id}", json={"title": "Second"}).json["title"] == "Second"
    assert client.delete(f"/api/notes/{note_id}").status_code == 204
    assert client.get(f"/api/notes/{note_id}").status_code == 404


def test_pagination(client):
    for i in range(25):
        client.post("/api/notes", json={"title": f"note {i}"})
    first = client.get("/api/notes?per_page=10").json
    assert first["total"] == 25 and len(first["items"]) == 10 and first["items"][0]["title"] == "note 24"
    last = client.get("/api/notes?per_page=10&page=3").json
    assert [n["title"] for n in last["items"]] == [f"note {i}" for i in range(4, -1, -1)]


@pytest.mark.parametrize("query,field", [("page=0", "page"), ("per_page=101", "per_page"), ("page=x", "page"),
                                         ("page=101", "page"), ("page=1000000", "page")])
def test_bad_query_parameters_are_422_naming_the_field(client, query, field):
    response = client.get(f"/api/notes?{query}")
    assert response.status_code == 422 and field in response.json["fields"]


@pytest.mark.parametrize("payload,field", [({}, "title"), ({"title": ""}, "title"), ({"title": 5}, "title"),
                                           ({"title": "x" * 201}, "title"), ({"title": "ok", "body": 3}, "body"),
                                           ({"title": "ok", "colour": "red"}, "colour"),
                                           # PostgreSQL cannot store these: they were 500s
                                           ({"title": "a\u0000b"}, "title"), ({"title": "ok", "body": "\x00"}, "body"),
                                           ({"title": "\ud800"}, "title"), ({"title": "ok", "body": "x\udfff"}, "body"),
                                           ({"title": "line\nbreak"}, "title"), ({"title": "final newline\n"}, "title"),
                                           ({"title": "ok", "body": "final NUL\x00"}, "body")])
def test_invalid_notes_are_422_naming_the_field(client, payload, field):
    response = client.post("/api/notes", json=payload)
    assert response.status_code == 422
    assert response.json["error"] == "validation_failed" and field in response.json["fields"]


@pytest.mark.parametrize("body", ["{not json", b'{"title": "\xff"}', "[" * 1000, '{"a":' * 5000])
def test_malformed_or_deep_json_is_400_without_a_field(client, body):
    response = client.post("/api/notes", data=body, content_type="application/json")
    assert response.status_code == 400 and response.json["error"] == "bad_request"
    assert "fields" not in response.json and response.json["request_id"]


def test_an_unclosed_string_full_of_escaped_quotes_is_one_linear_scan():
    """A quote and then escaped quotes with no closing one made every quote rescan the rest: 41 s for 40 KB, the
    worker's other requests stuck behind it. A timer turns a relapse into a failure, not a hung suite."""
    import signal

    from webapp.json_body import too_deep

    body = b'{"title": "' + b'\\"' * 500_000  # 1 MB
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(AssertionError("the depth scan is not linear")))
    signal.alarm(20)
    try:
        assert not too_deep(body)
    finally:
        signal.alarm(0)


def test_an_integer_too_long_for_python_is_400_not_500(client):
    response = client.post("/api/notes", data='{"title": ' + "1" * 5000 + "}", content_type="application/json")
    assert response.status_code == 400 and response.json["error"] == "bad_request"


def test_json_depth_scan_counts_brackets_outside_strings_only():
    from webapp.json_body import MAX_DEPTH, too_deep

    assert not too_deep(b'{"a": "' + b"[" * 1000 + b'"}')  # brackets inside a string are text
    assert not too_deep(b'{"a": "\\"}' + b"]" * 3)
    assert not too_deep(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    assert too_deep(b"[" * (MAX_DEPTH + 1))


@pytest.mark.parametrize("path", ["/api/notes/2147483648", "/api/notes/99999999999999999999999", "/api/notes/0",
                                  "/api/notes/-1"])
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_ids_outside_the_column_are_404_json(client, path, method):
    response = client.open(path, method=method, json={"title": "x"})
    assert response.status_code == 404 and response.json["error"] == "not_found" and response.json["request_id"]


def test_non_objects_are_422_and_an_empty_patch_changes_nothing(client):
    note = client.post("/api/notes", json={"title": "x"}).json
    assert client.post("/api/notes", json=[1]).status_code == 422
    assert client.post("/api/notes").status_code == 415  # no body at all: not JSON
    assert client.post("/api/notes", data=" ", content_type="application/json").status_code == 400
    assert client.patch(f"/api/notes/{note['id']}", data="title=x").status_code == 415
    patched = client.patch(f"/api/notes/{note['id']}", json={})
    assert patched.status_code == 200 and patched.json["title"] == "x"


def test_times_carry_their_offset(client):
    note = client.post("/api/notes", json={"title": "x"}).json
    listed = client.get("/api/notes").json["items"][0]
    for moment in (note["created_at"], note["updated_at"], listed["created_at"]):
        assert moment.endswith("+00:00")


def test_openapi_description_is_served_and_names_every_error(client):
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    post = spec["paths"]["/api/notes"]["post"]
    assert {"201", "400", "413", "422", "503"} <= set(post["responses"])
    error = spec["components"]["schemas"]["HTTPError"]
    assert error["required"] == ["error", "message", "request_id"]
    assert "NoteOut1" not in spec["components"]["schemas"]


def test_oversized_body_is_413_json(client):
    response = client.post("/api/notes", data=json.dumps({"title": "x", "body": "y" * (2 * 1024 * 1024)}),
                           content_type="application/json")
    assert response.status_code == 413 and response.json["error"] == "request_entity_too_large"


def test_not_found_and_wrong_method_are_json(client):
    assert client.get("/nope").json["error"] == "not_found"
    response = client.post("/health")
    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"


def test_unexpected_errors_are_500_json_without_internals(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    assert response.status_code == 500 and response.json["error"] == "internal_error"
    assert "secret internals" not in response.get_data(as_text=True)


def test_request_id_is_taken_or_made_and_returned(client):
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    made = client.get("/health").headers["X-Request-ID"]
    assert len(made) == 32
    hostile = client.get("/health", headers={"X-Request-ID": "x\" onerror=1 " + "a" * 200}).headers["X-Request-ID"]
    assert hostile != "x" and len(hostile) == 32
    # A trailing newline once passed the check ($ matches before it), and echoing it back was a 500.
    response = client.get("/health", environ_overrides={"HTTP_X_REQUEST_ID": "abc\n"})
    assert response.status_code == 200 and len(response.headers["X-Request-ID"]) == 32


def test_security_headers_and_hsts_only_over_https(monkeypatch):
    monkeypatch.setenv("PROXY_COUNT", "1")
    client = create_app("testing").test_client()
    plain = client.get("/health")
    assert plain.headers["X-Content-Type-Options"] == "nosniff" and plain.headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in plain.headers
    secure = client.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_proxyfix_trusts_exactly_proxy_count_hops(monkeypatch):
    monkeypatch.setenv("PROXY_COUNT", "1")
    app = create_app("testing")

    @app.get("/whoami")
    def whoami():
        from flask import request

        return {"addr": request.remote_addr, "scheme": request.scheme}

    seen = app.test_client().get("/whoami", headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7",
                                                     "X-Forwarded-Proto": "https"}).json
    assert seen == {"addr": "198.51.100.7", "scheme": "https"}  # the spoofable first hop is not trusted
    monkeypatch.setenv("PROXY_COUNT", "0")
    untrusted = create_app("testing")
    untrusted.add_url_rule("/whoami", view_func=whoami)
    assert untrusted.test_client().get("/whoami", headers={"X-Forwarded-For": "203.0.113.9"}).json["addr"] == \
        "127.0.0.1"


def test_csrf_protects_form_and_cookie_writes(app):
    app.config["WTF_CSRF_ENABLED"] = True

    @app.post("/form")
    def form():
        return {"ok": True}

    response = app.test_client().post("/form", data={"name": "x"})
    assert response.status_code == 400 and response.json["error"] == "bad_request"
    assert "CSRF" in response.json["message"] and response.json["request_id"]


def test_production_session_cookies_are_secure(monkeypatch):
    monkeypatch.setenv("DATABASE_HOST", "db.internal")
    monkeypatch.setenv("SECRET_KEY", "k" * 48)
    app = create_app("production")
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["SESSION_COOKIE_HTTPONLY"]
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_logs_are_json_with_the_request_id(monkeypatch, capsys):
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    client = create_app("testing").test_client()
    client.get("/health/nope", headers={"X-Request-ID": "trace-me-1"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    request_line = next(line for line in lines if line.get("message") == "request")
    assert request_line["request_id"] == "trace-me-1" and request_line["path"] == "/health/nope"
    assert request_line["status"] == 404 and request_line["level"] == "DEBUG"


def test_log_lines_inside_a_request_carry_its_id(app, capsys):
    import logging

    @app.get("/noisy")
    def noisy():
        logging.getLogger("webapp.test").warning("something to see")
        return {"ok": True}

    app.test_client().get("/noisy", headers={"X-Request-ID": "trace-me-2"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    warning = next(line for line in lines if line.get("message") == "something to see")
    assert warning["request_id"] == "trace-me-2" and warning["level"] == "WARNING"


def test_sentry_is_initialised_only_with_a_dsn(monkeypatch):
    import sentry_sdk

    calls = []
    monkeypatch.setattr(sentry_sdk, "init", lambda **kwargs: calls.append(kwargs))
    create_app("testing")
    assert calls == []
    monkeypatch.setenv("SENTRY_DSN", "https://public@sentry.example.invalid/1")
    monkeypatch.setenv("APP_VERSION", "1.2.3")
    create_app("testing")
    (options,) = calls
    assert options["dsn"] == "https://public@sentry.example.invalid/1"
    assert (options["environment"], options["release"], options["send_default_pii"]) == ("testing", "1.2.3", False)
    assert any(type(i).__name__ == "FlaskIntegration" for i in options["integrations"])
