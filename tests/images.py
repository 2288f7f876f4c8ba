"""Images for the container tests, made on this machine from Debian's packages: no registry is reachable here, so the
official Python base cannot be pulled. The base is a debootstrap of Debian bookworm with Python, imported into the
local engine and cached by its inputs (built once per machine); the application image is app/Dockerfile built on it
with the build inputs the stack's AppImage gives pulumi-docker, plus the two that only a test changes: the base and
where the RDS certificate bundle comes from.

Builds use the classic builder (DOCKER_BUILDKIT=0): BuildKit would fetch the Dockerfile's `# syntax=` frontend from
Docker Hub; the classic builder ignores that line and builds the same instructions."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
# The host's trust store goes into the base, so pip and apt inside a build trust what the host trusts.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
LABEL = "flask-aws.test"  # every image and container the tests make carries it


def docker(*args: str, timeout: float = 600, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """The docker CLI; a failure names the command and what docker said."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "DOCKER_BUILDKIT": "0"}, **kwargs)
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} ... failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done


def engine_answers() -> bool:
    try:
        return docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False, timeout=30).returncode == 0


def declared_volumes(image: str) -> set[str]:
    """The paths the image declares as VOLUME."""
    config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    return set(config.get("Volumes") or {})


def base_image() -> str:
    """Debian bookworm with Python 3 (what python:3.11-slim-bookworm holds, from Debian's packages instead of
    python.org's build), tagged by a digest of its inputs."""
    inputs = json.dumps([SUITE, MIRROR, BASE_PACKAGES, hashlib.sha256(HOST_CA_BUNDLE.read_bytes()).hexdigest()])
    tag = f"flask-aws-test-base:{hashlib.sha256(inputs.encode()).hexdigest()[:16]}"
    if image_exists(tag):
        return tag
    root = [] if os.geteuid() == 0 else ["sudo", "--non-interactive"]  # debootstrap makes device files
    rootfs = tempfile.mkdtemp(prefix="rootfs-")
    try:
        done = subprocess.run([*root, "debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                               SUITE, rootfs, MIRROR], capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"debootstrap of Debian {SUITE} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
        # The host's trust store, and no package lists or downloads left in the base.
        subprocess.run([*root, "sh", "-c", f"cp {HOST_CA_BUNDLE} {rootfs}/etc/ssl/certs/ca-certificates.crt && "
                        f"rm -rf {rootfs}/var/cache/apt/archives/*.deb {rootfs}/var/lib/apt/lists/*"], check=True)
        tar = subprocess.Popen([*root, "tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", "--change", "CMD [\"python3\"]", "--change", f"LABEL {LABEL}=base", "-",
                        tag], stdin=tar.stdout, check=True, capture_output=True, timeout=600)
        tar.stdout.close()
        if tar.wait() != 0:
            raise RuntimeError(f"tar of {rootfs} failed")
    finally:
        subprocess.run([*root, "rm", "-rf", rootfs], check=False)
    return tag


@dataclass(frozen=True)
class BuildInputs:
    """What pulumi-docker is given to build the application image (the stack's docker.Image `build`), with paths
    as the program gives them: relative to the directory Pulumi runs it in (the repository's root here)."""

    context: str
    dockerfile: str
    platform: str
    args: dict[str, str]

    @classmethod
    def of(cls, image_resource_inputs: dict) -> BuildInputs:
        build = image_resource_inputs["build"]
        return cls(build["context"], build["dockerfile"], build["platform"], dict(build.get("args") or {}))


def build_app_image(inputs: BuildInputs, *, base: str, bundle_url: str, bundle_sha256: str, tag: str) -> str:
    """app/Dockerfile built as the stack builds it, on `base`, fetching the RDS bundle from `bundle_url`."""
    args = {**inputs.args, "PYTHON_IMAGE": base, "RDS_CA_BUNDLE_URL": bundle_url,
            "RDS_CA_BUNDLE_SHA256": bundle_sha256}
    docker("build", "--network", "host", "--platform", inputs.platform, "--label", f"{LABEL}=app",
           "--file", str(ROOT / inputs.dockerfile), *(f"--build-arg={k}={v}" for k, v in sorted(args.items())),
           "--tag", tag, str(ROOT / inputs.context), timeout=900)
    return tag


def build_from_base(dockerfile: Path, *, base: str) -> str:
    """A small image for a test (a stand-in for an official image), FROM `base`, with the Dockerfile's folder as its
    context; tagged by the content of that folder, so it is built once per machine."""
    digest = hashlib.sha256(base.encode())
    for path in sorted(dockerfile.parent.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    name = dockerfile.name.removesuffix(".Dockerfile")
    tag = f"flask-aws-test-{name}:{digest.hexdigest()[:16]}"
    if not image_exists(tag):
        docker("build", "--network", "host", "--build-arg", f"BASE={base}", "--label", f"{LABEL}={name}",
               "--file", str(dockerfile), "--tag", tag, str(dockerfile.parent), timeout=900)
    return tag


@contextlib.contextmanager
def served(name: str, content: bytes) -> Iterator[str]:
    """`content` served over HTTP on a loopback port as /`name` (AWS's trust store serving its RDS bundle, say);
    yields the URL."""
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / name).write_bytes(content)
        handler = functools.partial(QuietHandler, directory=directory)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/{name}"
        finally:
            server.shutdown()
            server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass
