"""AWS's RDS certificate bundle, which the application verifies the database's TLS certificate against
(DATABASE_SSLMODE=verify-full, DATABASE_SSLROOTCERT).

    python rds_ca_bundle.py fetch URL SHA256 OUT   the image build: download, refuse anything but the pinned file
    python rds_ca_bundle.py pin [URL]              a maintainer: pin the published bundle in the Dockerfile and list
                                                   its certificates in rds-ca-bundle.subjects (`make rds-ca-pin`);
                                                   the diff of that list is what to review

AWS adds certificates when it opens a region, so the pinned file goes stale now and then: the build stops, someone
reviews the difference and re-pins. Only the standard library: the build stage runs it before anything is installed
(the pin command also needs openssl).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
DOCKERFILE = Path(__file__).resolve().parent / "Dockerfile"
SUBJECTS = Path(__file__).resolve().parent / "rds-ca-bundle.subjects"
PIN = re.compile(r"^(ARG RDS_CA_BUNDLE_SHA256=)([0-9a-f]{64})$", re.M)
CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----", re.S)


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def fetch(url: str, sha256: str, out: str) -> int:
    data = download(url)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        print(f"error: the RDS certificate bundle at {url} is not the pinned one (sha256 {digest}, pinned {sha256}): "
              "AWS changes it when it opens a region. Review the difference and re-pin: make rds-ca-pin",
              file=sys.stderr)
        return 1
    if not CERTIFICATE.search(data):
        print(f"error: {url} holds no PEM certificate", file=sys.stderr)
        return 1
    Path(out).write_bytes(data)
    return 0


def subjects(data: bytes) -> list[str]:
    """The subject of each certificate in a bundle, sorted."""
    found = []
    for block in CERTIFICATE.findall(data):
        with tempfile.NamedTemporaryFile(suffix=".pem") as one:
            one.write(block)
            one.flush()
            done = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", one.name], capture_output=True,
                                  text=True, check=True)
            found.append(done.stdout.strip().removeprefix("subject="))
    return sorted(found)


def pin(url: str = URL, dockerfile: Path = DOCKERFILE, listing: Path = SUBJECTS) -> str:
    """Pin the published bundle in the Dockerfile and list its certificates; return what changed."""
    data = download(url)
    digest = hashlib.sha256(data).hexdigest()
    text = dockerfile.read_text()
    current = PIN.search(text)
    if current is None:
        raise SystemExit(f"error: no `ARG RDS_CA_BUNDLE_SHA256=<sha256>` line in {dockerfile}")
    before = set(listing.read_text().splitlines()) if listing.exists() else set()
    after = subjects(data)
    dockerfile.write_text(PIN.sub(rf"\g<1>{digest}", text))
    listing.write_text("".join(f"{s}\n" for s in after))
    if current.group(2) == digest:
        return f"the pinned bundle is the published one (sha256 {digest})"
    return "\n".join([f"RDS certificate bundle: sha256 {current.group(2)} -> {digest} ({len(after)} certificates)",
                      *(f"  + {s}" for s in after if s not in before),
                      *(f"  - {s}" for s in sorted(before - set(after)))])


def main(argv: list[str]) -> int:
    if argv[:1] == ["fetch"] and len(argv) == 4:
        return fetch(*argv[1:])
    if argv[:1] == ["pin"] and len(argv) <= 2:
        print(pin(*argv[1:]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
