"""docker-compose.yml: valid against the compose specification, no secrets in it, every variable documented."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CHECK = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or "check-jsonschema"


def validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHECK, "--builtin-schema", "vendor.compose-spec", str(path)], capture_output=True,
                          text=True, timeout=120)


def test_valid_against_the_compose_specification():
    done = validate(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_can_fail(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("restart: unless-stopped", "restart: [sometimes]", 1))
    assert validate(broken).returncode != 0


def test_topology():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"web1", "web2", "db", "db-replica", "redis", "nginx"} <= set(services)
    assert all(services[name]["image"].startswith("postgres:15") for name in ("db", "db-replica"))
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]
    # The replica streams as a replication-only role, made once when the primary's data directory is created.
    assert "./deploy/postgres/replication-role.sh:/docker-entrypoint-initdb.d/replication-role.sh:ro" in \
        services["db"]["volumes"]
    assert services["db-replica"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["db-replica"]["user"] == "postgres"
    for name in ("db", "db-replica", "redis"):
        assert services[name]["healthcheck"]["test"]
    # The migration step runs once, with the master and owner logins, before any web container starts.
    migrate = services["migrate"]
    assert migrate["command"] == ["flask", "--app", "webapp", "db", "prepare"] and migrate["restart"] == "no"
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert migrate["environment"]["DATABASE_MASTER_USER"] == "${POSTGRES_USER:-postgres}"
    assert migrate["environment"]["DATABASE_USER"] == "${DATABASE_OWNER_USER:-app_owner}"
    for web in ("web1", "web2"):
        env = services[web]["environment"]
        assert services[web]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"},
                                               "db-replica": {"condition": "service_healthy"},
                                               "redis": {"condition": "service_healthy"}}
        assert env["DATABASE_REPLICA_HOSTS"] == "db-replica"
        # Gunicorn serves with the runtime role: no master or owner login in a web container.
        assert env["DATABASE_USER"] == "${DATABASE_RUNTIME_USER:-app_runtime}"
        assert not {k for k in env if "MASTER" in k or "OWNER" in k}
        assert "POSTGRES_PASSWORD" not in str(env) and "DATABASE_OWNER" not in str(env)
    assert services["nginx"]["depends_on"] == {"web1": {"condition": "service_healthy"},
                                               "web2": {"condition": "service_healthy"}}
    assert any(v.startswith("certs:") for v in services["nginx"]["volumes"])
    assert all(s["restart"] == "unless-stopped" for name, s in services.items() if name != "migrate")


def test_no_secrets_in_the_file_and_every_variable_documented():
    text = COMPOSE.read_text()
    variables = set(re.findall(r"\$\{([A-Z_]+)", text))
    documented = {line.split("=")[0] for line in (ROOT / ".env.example").read_text().splitlines()
                  if "=" in line and not line.startswith("#")}
    assert variables <= documented, variables - documented
    compose = yaml.safe_load(text)
    for service in compose["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "TOKEN")):
                assert str(value).startswith("${") and ":?" in str(value), f"{key} must come from .env"
    assert (ROOT / ".gitignore").read_text().count(".env") >= 1
