"""AppImage component: the ECR repository, and both ways to the image digest."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.components.image import AppImage, content_tag, context_files
from infra.offline import harness
from tests.infra.conftest import KEY_ARN, settings_for
from tests.strategies import hostile_text

DIGEST_URI = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flask-aws-prod/app@sha256:" + "b" * 64


def build(tmp_path, **image) -> tuple[harness.Run, list]:
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\n")
    s = settings_for("prod", image=image)
    found = []
    run = harness.run(lambda: found.append(AppImage("image", s.image, name_prefix="flask-aws-prod",
                                                    kms_key_arn=KEY_ARN, context_dir=tmp_path, context_path="app",
                                                    force_delete=False)))
    return run, found


def test_repository_is_immutable_scanned_encrypted_and_pruned(tmp_path):
    run, _ = build(tmp_path)
    repo = run.one("aws:ecr/repository:Repository").inputs
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": KEY_ARN}]
    rule = json.loads(run.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])["rules"][0]
    assert rule["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30}


def test_build_path_tags_by_content_pushes_and_yields_a_digest(tmp_path):
    run, (component,) = build(tmp_path, platform="linux/amd64")
    image = run.one("docker:index/image:Image")
    assert image.inputs["build"]["platform"] == "linux/amd64"
    assert image.inputs["build"]["context"] == "app" and image.inputs["build"]["dockerfile"] == "app/Dockerfile"
    # (the stack passes the path relative to the working directory: see test_harness)
    assert image.inputs["imageName"].endswith(":" + content_tag(tmp_path))
    assert image.redacted["registry"] == harness.SECRET  # holds the registry token
    assert "@sha256:" in image.outputs["repoDigest"]


def test_prebuilt_path_builds_nothing(tmp_path):
    run, (component,) = build(tmp_path, uri=DIGEST_URI)
    assert run.of_type("docker:index/image:Image") == []
    assert component.image_uri == DIGEST_URI


def test_content_tag_is_stable_changes_with_content_and_ignores_dockerignored_files(tmp_path):
    (tmp_path / "app.py").write_text("print('a')\n")
    (tmp_path / ".dockerignore").write_text("__pycache__\n*.pyc\ntests\n")
    first = content_tag(tmp_path)
    assert first == content_tag(tmp_path) and first.startswith("app-")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_app.py").write_text("x = 1\n")
    assert content_tag(tmp_path) == first
    (tmp_path / "app.py").write_text("print('b')\n")
    assert content_tag(tmp_path) != first


def test_a_dockerfile_change_is_a_new_tag_though_the_context_leaves_it_out(tmp_path):
    """The Dockerfile is in .dockerignore (not COPYable) but the build reads it: the same tag for a different image
    would be refused by the immutable repository."""
    (tmp_path / "app.py").write_text("print('a')\n")
    (tmp_path / ".dockerignore").write_text("Dockerfile\n.dockerignore\n")
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\n")
    first = content_tag(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nRUN true\n")
    assert content_tag(tmp_path) != first and "Dockerfile" not in context_files(tmp_path)


def test_dockerignore_patterns_are_matched_as_docker_matches_them(tmp_path):
    """Cleaned like paths, anchored at the context's root (only ** spans folders), with character classes."""
    (tmp_path / ".dockerignore").write_text("./tests/\n*.db\n**/*.pyc\nlog[0-9].txt\n")
    files = ["tests/a.py", "webapp/tests/b.py", "x.db", "webapp/y.db", "webapp/z.pyc", "w.pyc", "log1.txt",
             "logs.txt", "app.py"]
    for relative in files:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x\n")
    assert context_files(tmp_path) == [".dockerignore", "app.py", "logs.txt", "webapp/tests/b.py", "webapp/y.db"]


@given(lines=st.lists(st.one_of(hostile_text(12), st.sampled_from(["[z-a]", "**/", "!tests", "[^a]b", "./x/"])),
                      max_size=6))
def test_any_dockerignore_gives_the_kept_files_or_one_clear_error(tmp_path_factory, lines):
    directory = tmp_path_factory.mktemp("context")
    (directory / "app.py").write_text("x = 1\n")
    (directory / ".dockerignore").write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    try:
        kept = context_files(directory)
    except ValueError as err:
        assert "is not a pattern docker accepts" in str(err) and ".dockerignore line " in str(err)
    else:
        assert set(kept) <= {"app.py", ".dockerignore"}


def test_a_pattern_docker_refuses_is_named_with_its_line(tmp_path):
    (tmp_path / ".dockerignore").write_text("tests\n[z-a]\n")
    with pytest.raises(ValueError, match=r"line 2: '\[z-a\]' is not a pattern docker accepts"):
        content_tag(tmp_path)
