"""The nginx configuration: nginx -t accepts it, gixy finds nothing, the compose copy is current."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.local.topology import self_signed_certificate
from deploy.nginx.render import COMPOSE_CONF, NginxSite, compose_site

ROOT = Path(__file__).resolve().parents[2]
GIXY = shutil.which("gixy", path=str(Path(sys.executable).parent)) or "gixy"


def native_site(tmp_path, **overrides) -> tuple[NginxSite, Path]:
    cert, key = self_signed_certificate(tmp_path)
    site = NginxSite(upstreams=["127.0.0.1:18001", "127.0.0.1:18002"], certificate=str(cert),
                     certificate_key=str(key), static_root=str(ROOT / "app" / "webapp" / "static"),
                     runtime=str(tmp_path), http_listen="127.0.0.1:18080", https_listen="127.0.0.1:18443",
                     https_port=18443, access_log=str(tmp_path / "access.log"), error_log=str(tmp_path / "error.log"),
                     user="www-data" if os.geteuid() == 0 else None, **overrides)
    conf = tmp_path / "nginx.conf"
    conf.write_text(site.render())
    return site, conf


def nginx_test(conf: Path, prefix: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["nginx", "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize("options", [{}, {"backup": "127.0.0.1:18003"}])
def test_nginx_accepts_the_rendered_configuration(tmp_path, options):
    _, conf = native_site(tmp_path, **options)
    done = nginx_test(conf, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr and "test is successful" in done.stderr


def test_nginx_t_can_fail(tmp_path):
    _, conf = native_site(tmp_path)
    conf.write_text(conf.read_text().replace("least_conn;", "least_conn"))
    assert nginx_test(conf, tmp_path).returncode != 0


@pytest.mark.parametrize("which", ["native", "compose"])
def test_gixy_reports_no_issues(tmp_path, which):
    conf = native_site(tmp_path)[1] if which == "native" else COMPOSE_CONF
    done = subprocess.run([GIXY, str(conf)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout
    assert "Total issues:" not in done.stdout or all(
        line.strip().endswith(": 0") for line in done.stdout.split("Total issues:")[1].splitlines() if ":" in line)


def test_gixy_would_catch_a_problem(tmp_path):
    _, conf = native_site(tmp_path)
    conf.write_text(conf.read_text().replace("server_tokens off;", "server_tokens on;"))
    assert subprocess.run([GIXY, str(conf)], capture_output=True, text=True, timeout=60).returncode != 0


def test_the_compose_copy_is_rendered_from_the_template(tmp_path):
    assert COMPOSE_CONF.read_text() == compose_site().render(), "run: python -m deploy.nginx.render --compose"
    # and nginx accepts it, given local stand-ins for the container's paths
    cert, key = self_signed_certificate(tmp_path)
    local = (COMPOSE_CONF.read_text().replace("/tmp/", f"{tmp_path}/")
             .replace("/etc/nginx/certs/fullchain.pem", str(cert)).replace("/etc/nginx/certs/privkey.pem", str(key))
             .replace("user nginx;", "user www-data;" if os.geteuid() == 0 else "")
             .replace("resolver 127.0.0.11", "resolver 127.0.0.1").replace("web1:8000", "127.0.0.1:18001")
             .replace("web2:8000", "127.0.0.1:18002"))
    conf = tmp_path / "compose-local.conf"
    conf.write_text(local)
    done = nginx_test(conf, tmp_path)
    assert done.returncode == 0, done.stderr


def test_configuration_choices():
    text = compose_site().render()
    assert "least_conn;" in text and "keepalive 32;" in text and "zone app 64k;" in text
    assert "max_fails=5 fail_timeout=5s" in text
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text and "ssl_session_tickets off;" in text
    assert "ssl_stapling on;" in text and "client_max_body_size 1m;" in text
    assert "proxy_next_upstream error timeout;" in text and "non_idempotent" not in text.split("#")[0]
    for header in ("Host $host", "X-Real-IP $remote_addr", "X-Forwarded-For $proxy_add_x_forwarded_for",
                   "X-Forwarded-Proto $scheme", "X-Request-ID $req_id"):
        assert f"proxy_set_header {header};" in text
    health = text.split("location = /health {")[1].split("}")[0]
    assert "access_log off;" in health
    backup = NginxSite(upstreams=["a:1"], certificate="c", certificate_key="k", static_root="/s", runtime="/r",
                       backup="b:2").render()
    assert "server b:2 backup;" in backup
