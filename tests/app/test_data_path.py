"""The data path against real servers: writes to the primary, reads from replicas, read-your-writes, the Redis
cache, pools, and recovery when a replica, Redis or the primary goes away."""

from sqlalchemy import event
from webapp.database import db


class EngineUse:
    """Counts statements per engine (primary or a replica bind)."""

    def __init__(self, app):
        self.counts = {}
        with app.app_context():
            for name, engine in db.engines.items():
                event.listen(engine, "before_cursor_execute", self._counter(name or "primary"))

    def _counter(self, name):
        def count(conn, cursor, statement, parameters, context, executemany):
            self.counts[name] = self.counts.get(name, 0) + 1
        return count

    def reset(self):
        self.counts.clear()


def create(client, title="note"):
    response = client.post("/api/notes", json={"title": title})
    assert response.status_code == 201
    return response.json


def replicated(postgres):
    primary, replica = postgres
    replica.wait_for_replay(primary.wal_position())


def test_writes_go_to_the_primary_and_reads_to_the_replica(pg_app, postgres, redis_up):
    use = EngineUse(pg_app)
    client = pg_app.test_client()
    note = create(client)
    assert set(use.counts) == {"primary"}
    replicated(postgres)
    redis_up_client = __import__("redis").Redis(port=redis_up.port, password=redis_up.password)
    redis_up_client.flushall()  # make the read reach the database
    use.reset()
    assert client.get(f"/api/notes/{note['id']}").json["title"] == "note"
    assert set(use.counts) == {"replica_0"}


def test_a_request_that_wrote_reads_its_own_writes_from_the_primary(pg_app):
    use = EngineUse(pg_app)

    from webapp.extensions import csrf

    @pg_app.post("/write-then-read")
    @csrf.exempt
    def write_then_read():
        from webapp.models import Note

        note = Note(title="fresh", body="")
        db.session.add(note)
        db.session.commit()
        return {"seen": db.session.get(Note, note.id, populate_existing=True).title}

    assert pg_app.test_client().post("/write-then-read").json == {"seen": "fresh"}
    assert "replica_0" not in use.counts


def test_reads_spread_over_several_replicas(monkeypatch, postgres, pg_env, redis_up):
    primary, replica = postgres
    # Two binds on the one replica server (127.0.0.1 and localhost) stand for two replicas.
    monkeypatch.setenv("DATABASE_REPLICA_HOSTS", f"127.0.0.1:{replica.port},localhost:{replica.port}")
    monkeypatch.delenv("REDIS_URL")
    from webapp import create_app

    app = create_app("testing")
    use = EngineUse(app)
    client = app.test_client()
    note = create(client)
    replicated(postgres)
    use.reset()
    for _ in range(40):
        assert client.get(f"/api/notes/{note['id']}").status_code == 200
    assert use.counts.get("replica_0", 0) > 5 and use.counts.get("replica_1", 0) > 5
    assert "primary" not in use.counts


def test_read_through_cache_write_through_on_writes(pg_app, postgres):
    use = EngineUse(pg_app)
    client = pg_app.test_client()
    note = create(client, "cached")
    replicated(postgres)
    use.reset()
    assert client.get(f"/api/notes/{note['id']}").json["title"] == "cached"
    assert use.counts == {}  # the create stored the fresh note
    client.get("/api/notes")
    listed = dict(use.counts)
    assert sum(listed.values()) == 2  # count + page
    client.get("/api/notes")
    assert use.counts == listed  # served from Redis
    client.patch(f"/api/notes/{note['id']}", json={"title": "changed"})
    assert client.get(f"/api/notes/{note['id']}").json["title"] == "changed"  # no wait for the replica needed
    replicated(postgres)
    assert client.get("/api/notes").json["items"][0]["title"] == "changed"  # the list version moved on


def test_a_read_that_raced_a_write_never_overwrites_the_fresh_value(pg_app):
    from webapp.cache import cache

    client = pg_app.test_client()
    note = create(client, "old")
    client.patch(f"/api/notes/{note['id']}", json={"title": "new"})
    with pg_app.app_context():  # a GET that read the old row (say from a lagging replica) populates late
        cache.set(f"notes:{note['id']}", {**note, "title": "old"}, only_if_absent=True)
    assert client.get(f"/api/notes/{note['id']}").json["title"] == "new"
    client.delete(f"/api/notes/{note['id']}")
    with pg_app.app_context():
        cache.set(f"notes:{note['id']}", note, only_if_absent=True)
    assert client.get(f"/api/notes/{note['id']}").status_code == 404  # the tombstone stands


def test_writes_reach_the_cache_even_while_this_process_backs_off_from_redis(pg_app):
    from webapp.cache import cache

    client = pg_app.test_client()
    note = create(client, "before")
    cache._down_until = float("inf")  # this process saw an error; Redis itself is fine
    client.patch(f"/api/notes/{note['id']}", json={"title": "after"})
    cache._down_until = 0.0
    assert client.get(f"/api/notes/{note['id']}").json["title"] == "after"


def test_api_keeps_working_uncached_when_redis_is_down(pg_app, redis_up, postgres):
    client = pg_app.test_client()
    note = create(client)
    replicated(postgres)
    redis_up.stop()
    try:
        assert client.get(f"/api/notes/{note['id']}").status_code == 200
        assert create(client, "while redis is down")["title"] == "while redis is down"
        replicated(postgres)
        assert client.get("/api/notes").json["total"] == 2
        health = client.get("/health/detailed")
        assert health.status_code == 503 and health.json["failed"] == ["redis"]
    finally:
        redis_up.start()


def test_reads_fall_back_to_the_primary_when_the_replica_is_down(pg_app, postgres):
    primary, replica = postgres
    client = pg_app.test_client()
    note = create(client)
    replicated(postgres)
    pg_app.config["REDIS_URL"] = ""  # every read reaches the database
    replica.stop()
    try:
        use = EngineUse(pg_app)
        assert client.get(f"/api/notes/{note['id']}").json["id"] == note["id"]
        assert client.get("/api/notes").json["total"] == 1
        assert use.counts.get("primary", 0) >= 2
    finally:
        replica.start()


def test_the_app_recovers_by_itself_after_the_primary_restarts(pg_app, postgres):
    primary, _ = postgres
    client = pg_app.test_client()
    create(client)
    primary.restart()
    assert create(client, "after restart")["title"] == "after restart"


def test_primary_down_writes_are_503_with_retry_after_and_reads_go_on(pg_app, postgres):
    """A client is told to come back (503, Retry-After), not that the server broke (500: the rollback alarm)."""
    primary, _ = postgres
    client = pg_app.test_client()
    note = create(client)
    replicated(postgres)
    primary.stop()
    try:
        for method, path in (("POST", "/api/notes"), ("PATCH", f"/api/notes/{note['id']}"),
                             ("DELETE", f"/api/notes/{note['id']}")):
            response = client.open(path, method=method, json={"title": "while down"})
            assert response.status_code == 503, (method, response.json)
            assert response.json["error"] == "service_unavailable" and response.json["request_id"]
            assert int(response.headers["Retry-After"]) > 0
        pg_app.config["REDIS_URL"] = ""
        assert client.get(f"/api/notes/{note['id']}").json["id"] == note["id"]  # from the replica
        assert client.get("/health").status_code == 200  # liveness: the load balancer keeps the task
        detailed = client.get("/health/detailed")
        assert detailed.status_code == 503 and "database" in detailed.json["failed"]
    finally:
        primary.start()
    assert create(client, "after")["title"] == "after"


def test_a_read_on_a_connection_the_primary_closed_runs_once_more_on_a_fresh_one(monkeypatch, pg_env, postgres):
    """No ping before each checkout: after a restart the pooled connection is dead, and the read meets it."""
    monkeypatch.setenv("DATABASE_REPLICA_HOSTS", "")
    monkeypatch.setenv("REDIS_URL", "")
    from webapp import create_app

    primary, _ = postgres
    app = create_app("testing")
    client = app.test_client()
    note = create(client)
    assert client.get(f"/api/notes/{note['id']}").status_code == 200  # the pool now holds a connection
    primary.restart()
    assert client.get(f"/api/notes/{note['id']}").status_code == 200
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


def test_the_detailed_health_check_is_not_fooled_by_a_connection_the_server_closed(pg_app, postgres):
    primary, _ = postgres
    pg_app.config["HEALTH_CACHE_SECONDS"] = 0
    client = pg_app.test_client()
    assert client.get("/health/detailed").status_code == 200  # the pools now hold connections
    primary.restart()
    response = client.get("/health/detailed")
    assert response.status_code == 200, response.json


def test_a_read_on_a_connection_the_replica_closed_stays_on_the_replica(pg_app, postgres, redis_up):
    from webapp.database import replica_health

    _, replica = postgres
    client = pg_app.test_client()
    note = create(client)
    replicated(postgres)
    redis_up.client().flushall()  # the next read reaches the database
    assert client.get(f"/api/notes/{note['id']}").status_code == 200
    replica.restart()
    redis_up.client().flushall()
    use = EngineUse(pg_app)
    assert client.get(f"/api/notes/{note['id']}").json["id"] == note["id"]
    assert use.counts.get("primary", 0) == 0 and use.counts.get("replica_0", 0) >= 1
    assert replica_health.available(["replica_0"]) == ["replica_0"]  # not marked down


def test_a_write_is_retried_only_when_commit_was_never_sent(pg_app):
    from sqlalchemy.exc import OperationalError
    from webapp.database import write_with_retry

    def unit(commit_first: bool, calls: list):
        def run():
            calls.append(1)
            db.session.execute(db.select(db.literal(1)))
            if commit_first:
                db.session.commit()  # COMMIT goes out, then the connection dies: the outcome is unknown
            if len(calls) == 1:
                raise OperationalError("INSERT", {}, Exception("server closed the connection"),
                                       connection_invalidated=True)
            return "done"
        return run

    with pg_app.test_request_context():
        before = []
        assert write_with_retry(unit(False, before)) == "done" and len(before) == 2
        after = []
        try:
            write_with_retry(unit(True, after))
        except OperationalError:
            pass
        else:
            raise AssertionError("a failure after COMMIT was retried")
        assert len(after) == 1


def test_pools_are_sized_by_the_environment(monkeypatch, pg_env):
    monkeypatch.setenv("DB_POOL_SIZE", "3")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "4")
    from webapp import create_app

    app = create_app("testing")
    with app.app_context():
        for engine in db.engines.values():
            assert engine.pool.size() == 3 and engine.pool._max_overflow == 4
            assert engine.pool._pre_ping is False and engine.pool._recycle == 300


def test_reads_of_nothing(pg_app):
    client = pg_app.test_client()
    assert client.get("/api/notes/999999").status_code == 404
    empty = client.get("/api/notes?page=100")
    assert empty.status_code == 200 and empty.json["items"] == [] and empty.json["total"] == 0
