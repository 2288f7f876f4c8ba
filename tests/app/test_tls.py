"""Verified TLS to PostgreSQL (sslmode=verify-full against DATABASE_SSLROOTCERT) and Redis (certificate and host name
against REDIS_CA_CERTS), with a test CA (trustme) and real servers: the right certificate is accepted, a certificate
from another CA or for another host name is refused."""

from __future__ import annotations

import subprocess

import pytest
import trustme
from sqlalchemy import text

from deploy.local.servers import PostgresServer, RedisServer


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The CA the app trusts, a rogue one, and where the app finds the first."""
    directory = tmp_path_factory.mktemp("pki")
    ca, rogue = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    return {"ca": ca, "rogue": rogue, "ca_file": str(directory / "ca.pem")}


def certificate(issuer: trustme.CA, *names: str) -> tuple[bytes, bytes]:
    leaf = issuer.issue_cert(*names)
    return b"".join(pem.bytes() for pem in leaf.cert_chain_pems), leaf.private_key_pem.bytes()


@pytest.fixture(scope="module")
def postgres_tls(pki):
    server = PostgresServer.create(name="tls", certificate=certificate(pki["ca"], "localhost"))
    try:
        yield server
    finally:
        server.destroy()


def serve_certificate(server: PostgresServer, pem: tuple[bytes, bytes]) -> None:
    """Swap the server's certificate (PostgreSQL reloads it on SIGHUP)."""
    for name, content in zip(("server.crt", "server.key"), pem, strict=True):
        (server.data / name).write_bytes(content)
    with server.connect() as connection:
        connection.execute("SELECT pg_reload_conf()")


def app_on(monkeypatch, server: PostgresServer, ca_file: str):
    for key, value in {"DATABASE_HOST": "localhost", "DATABASE_PORT": str(server.port), "DATABASE_NAME": "postgres",
                       "DATABASE_USER": "postgres", "DATABASE_PASSWORD": server.password,
                       "DATABASE_SSLMODE": "verify-full", "DATABASE_SSLROOTCERT": ca_file}.items():
        monkeypatch.setenv(key, value)
    from webapp import create_app

    return create_app("testing")


def connection_is_encrypted(app) -> bool:
    from webapp.database import db

    with app.app_context():
        try:
            return db.session.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar()
        finally:
            db.session.remove()
            db.engine.dispose()


def test_postgresql_verify_full_accepts_the_right_certificate(postgres_tls, pki, monkeypatch):
    serve_certificate(postgres_tls, certificate(pki["ca"], "localhost"))
    assert connection_is_encrypted(app_on(monkeypatch, postgres_tls, pki["ca_file"])) is True


@pytest.mark.parametrize("issuer, names, error", [
    ("rogue", ("localhost",), "certificate verify failed"),
    ("ca", ("db.elsewhere.example",), 'does not match host name "localhost"'),
])
def test_postgresql_verify_full_refuses_another_ca_or_host(postgres_tls, pki, monkeypatch, issuer, names, error):
    serve_certificate(postgres_tls, certificate(pki[issuer], *names))
    try:
        with pytest.raises(Exception, match=error):
            connection_is_encrypted(app_on(monkeypatch, postgres_tls, pki["ca_file"]))
    finally:
        serve_certificate(postgres_tls, certificate(pki["ca"], "localhost"))


def test_pg_dump_verifies_the_server_too(postgres_tls, pki, monkeypatch):
    """The backup commands run libpq's tools with the same TLS settings (PGSSLMODE, PGSSLROOTCERT)."""
    from webapp.postgres import Database

    database = Database("localhost", postgres_tls.port, "postgres", postgres_tls.password, "postgres",
                        sslmode="verify-full", sslrootcert=pki["ca_file"])
    done = subprocess.run(["pg_dump", "--schema-only"], capture_output=True, text=True,
                          env=database.libpq_environment(), timeout=60)
    assert done.returncode == 0, done.stderr
    serve_certificate(postgres_tls, certificate(pki["rogue"], "localhost"))
    try:
        done = subprocess.run(["pg_dump", "--schema-only"], capture_output=True, text=True,
                              env=database.libpq_environment(), timeout=60)
        assert done.returncode != 0 and "certificate verify failed" in done.stderr
    finally:
        serve_certificate(postgres_tls, certificate(pki["ca"], "localhost"))


def test_a_missing_root_certificate_file_is_a_configuration_error(monkeypatch):
    from webapp.config import ConfigError, load

    monkeypatch.setenv("DATABASE_SSLROOTCERT", "/nonexistent/rds-global-bundle.pem")
    monkeypatch.setenv("DATABASE_SSLMODE", "verify-fully")
    with pytest.raises(ConfigError) as refused:
        load("production")
    assert "DATABASE_SSLROOTCERT=/nonexistent/rds-global-bundle.pem is not a readable file" in str(refused.value)
    assert "DATABASE_SSLMODE='verify-fully' is not one of" in str(refused.value)


def redis_app(monkeypatch, server: RedisServer, ca_file: str):
    for key, value in {"REDIS_HOST": "localhost", "REDIS_PORT": str(server.port), "REDIS_TLS": "true",
                       "REDIS_CA_CERTS": ca_file, "REDIS_AUTH_TOKEN": server.password}.items():
        monkeypatch.setenv(key, value)
    from webapp import create_app

    return create_app("testing")


@pytest.mark.parametrize("issuer, names, accepted", [
    ("ca", ("localhost",), True),
    ("rogue", ("localhost",), False),
    ("ca", ("cache.elsewhere.example",), False),
])
def test_redis_tls_verifies_certificate_and_host_name(pki, monkeypatch, issuer, names, accepted):
    import redis

    server = RedisServer(certificate=(*certificate(pki[issuer], *names), pki["ca"].cert_pem.bytes())).start()
    try:
        app = redis_app(monkeypatch, server, pki["ca_file"])
        from webapp.cache import cache

        with app.app_context():
            if accepted:
                assert cache.ping() is True
                assert cache.client.connection_pool.connection_kwargs["ssl_cert_reqs"] == "required"
            else:
                with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED|match"):
                    cache.ping()
    finally:
        server.destroy()


@pytest.mark.parametrize("issuer, accepted", [("ca", True), ("rogue", False)])
def test_without_redis_ca_certs_the_systems_cas_verify_redis(pki, monkeypatch, issuer, accepted):
    """As on AWS (ElastiCache's chain ends at a public CA): no REDIS_CA_CERTS, the system's store decides. OpenSSL
    reads the system store's file from SSL_CERT_FILE, which stands in for it here."""
    import redis

    server = RedisServer(certificate=(*certificate(pki[issuer], "localhost"), pki["ca"].cert_pem.bytes())).start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", pki["ca_file"])
        redis_app(monkeypatch, server, pki["ca_file"])  # the Redis variables
        monkeypatch.delenv("REDIS_CA_CERTS")
        from webapp import create_app
        from webapp.cache import cache

        app = create_app("testing")
        with app.app_context():
            assert cache.client.connection_pool.connection_kwargs["ssl_ca_certs"] is None
            if accepted:
                assert cache.ping() is True
            else:
                with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
                    cache.ping()
    finally:
        server.destroy()
