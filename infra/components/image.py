"""The application image: an ECR repository, and the image the service runs, always referenced by digest."""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from infra.components import type_token
from infra.settings import ImageSettings


def context_files(directory: Path) -> list[str]:
    """The files of a build context that docker is given: what .dockerignore leaves in, matched as docker matches
    (a pattern excludes a path or any folder above it; `*` and `?` stay within a folder, `**` spans folders; a later
    `!pattern` takes a path back). A test builds a context with the real engine and compares."""
    ignore_file = directory / ".dockerignore"
    rules = []
    if ignore_file.exists():
        for number, line in enumerate(ignore_file.read_text().splitlines(), start=1):
            line = line.strip()
            if line and not line.startswith("#"):
                keep = line.startswith("!")
                # Docker cleans each pattern as a path first: "./tests/" and "/tests" are "tests".
                pattern = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/")
                try:
                    rules.append((keep, _docker_pattern(pattern)))
                except re.error as err:
                    raise ValueError(f"{ignore_file} line {number}: {line!r} is not a pattern docker accepts "
                                     f"({err}); fix or remove it") from None
    kept = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory).as_posix()
        parts = relative.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        included = True
        for keep, pattern in rules:
            if any(pattern.fullmatch(prefix) for prefix in prefixes):
                included = keep
        if included:
            kept.append(relative)
    return kept


def _docker_pattern(pattern: str) -> re.Pattern:
    regex, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif pattern[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif pattern[i] == "?":
            regex, i = regex + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i + 2:]:  # a character class, "[^...]" negated (Go's syntax)
            end = pattern.index("]", i + 2)
            members = pattern[i + 1:end]
            negated = members[:1] == "^"
            regex, i = regex + "[" + ("^" if negated else "") + members[negated:].replace("\\", "\\\\") + "]", end + 1
        else:
            regex, i = regex + re.escape(pattern[i]), i + 1
    return re.compile(regex)


def content_tag(directory: Path) -> str:
    """A tag derived from what the build reads: the context's files and the Dockerfile (which .dockerignore keeps out
    of the context, yet a change to it is a new image), so an unchanged app keeps its tag and Pulumi sees nothing to
    rebuild; any change gives a new tag, which an immutable repository needs."""
    digest = hashlib.sha256()
    for relative in sorted({*context_files(directory), "Dockerfile"}):
        path = directory / relative
        digest.update(relative.encode() + b"\0" + (path.read_bytes() if path.exists() else b"") + b"\0")
    return "app-" + digest.hexdigest()[:16]


def lifecycle_policy(keep: int) -> str:
    return json.dumps({"rules": [{
        "rulePriority": 1,
        "description": f"keep the newest {keep} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
        "action": {"type": "expire"},
    }]})


class AppImage(pulumi.ComponentResource):
    """An ECR repository (immutable tags, scan on push, encrypted with the data key, last N images kept), and
    either the image built from app/Dockerfile with pulumi_docker and pushed there, or a prebuilt image given by
    digest (what CI deploys). `image_uri` is always `<repository>@sha256:<digest>`.

    `context_dir` is hashed for the tag; `context_path` is what docker is given, relative to the working directory
    Pulumi runs the program in (infra/ with `main: infra/`), so it reads the same on every machine."""

    def __init__(self, name: str, settings: ImageSettings, *, name_prefix: str, kms_key_arn: pulumi.Input[str],
                 context_dir: Path, context_path: str, force_delete: bool,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("image", "AppImage"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repository = aws.ecr.Repository(
            f"{name}-repository",
            name=f"{name_prefix}/app",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": kms_key_arn}],
            force_delete=force_delete,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(f"{name}-lifecycle", repository=self.repository.name,
                                policy=lifecycle_policy(settings.keep_images),
                                opts=pulumi.ResourceOptions(parent=self.repository))
        if settings.uri:
            self.image_uri: pulumi.Input[str] = settings.uri
        else:
            tag = content_tag(context_dir)
            token = aws.ecr.get_authorization_token_output(registry_id=self.repository.registry_id,
                                                           opts=pulumi.InvokeOptions(parent=self))
            image = docker.Image(
                f"{name}-build",
                build={"context": context_path, "dockerfile": f"{context_path}/Dockerfile",
                       "platform": settings.platform},
                image_name=self.repository.repository_url.apply(lambda url: f"{url}:{tag}"),
                registry={"server": self.repository.repository_url, "username": token.user_name,
                          "password": pulumi.Output.secret(token.password)},
                opts=child,
            )
            self.image_uri = image.repo_digest
        self.repository_url = self.repository.repository_url
        self.register_outputs({"repository_url": self.repository_url, "image_uri": self.image_uri})
