"""Runs the real Pulumi program offline under Pulumi's mock engine and records every resource it registers.

The tests, `python -m infra.plan` and the parity report share this module; the mocked cloud is in mocks.py, the
SDK internals it needs in sdk.py. A stack runs exactly as the Pulumi Python host runs it
(`runpy.run_path` on infra/), with the stack's YAML config passed the way the CLI passes it (strings; objects as
JSON). Invokes get realistic answers, resources get realistic computed outputs (ids, ARNs, endpoints), and outputs
the engine would mark secret are marked secret here too.
"""

from __future__ import annotations

import gc
import hashlib
import json
import runpy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import resource_pb2

from infra import tiers
from infra.offline import sdk
from infra.offline.mocks import ACCOUNT, CloudMocks  # noqa: F401 ACCOUNT: the mocked account, for tests

ROOT = Path(__file__).resolve().parents[2]
SECRET = "[secret]"


# --- what is recorded


@dataclass
class Recorded:
    """One registered resource: what the program asked for, as the provider would receive it."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict  # secret values unwrapped, for assertions
    redacted: dict  # secret values replaced by "[secret]", for printing
    outputs: dict  # what the mock engine answered (inputs plus computed values)
    provider: str | None
    protect: bool
    ignore_changes: list[str]
    delete_before_replace: bool
    custom_timeouts: dict = field(default_factory=dict)
    registered_outputs: dict = field(default_factory=dict)  # a component's register_outputs()
    dependencies: dict[str, list[str]] = field(default_factory=dict)  # input -> URNs it depends on, as the engine
    depends_on: list[str] = field(default_factory=list)  # every URN it waits for (depends_on and inputs)
    aliases: list[str] = field(default_factory=list)  # the URNs it was known by before (no replacement on a move)


@dataclass
class Run:
    """Everything one program run declared."""

    project: str
    stack: str
    region: str
    resources: list[Recorded]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    config: dict[str, str] = field(default_factory=dict)  # what the program was given, as the CLI gives it
    secret_keys: list[str] = field(default_factory=list)
    root: Path | None = None  # the project folder, for a run of its program (run_stack)

    def of_type(self, type_: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> Recorded:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {[r.name for r in found]}"
        return found[0]

    def named(self, name: str, type_: str | None = None) -> Recorded:
        found = [r for r in self.resources if r.name == name and type_ in (None, r.type)]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    def children(self, parent: Recorded) -> list[Recorded]:
        return [r for r in self.resources if r.parent == parent.urn]

    def descendants(self, parent: Recorded) -> list[Recorded]:
        found = []
        for child in self.children(parent):
            found += [child, *self.descendants(child)]
        return found

    def by_urn(self, urn: str) -> Recorded:
        return next(r for r in self.resources if r.urn == urn)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.resources:
            counts[r.type] = counts.get(r.type, 0) + 1
        return dict(sorted(counts.items()))

    def as_json(self) -> dict:
        return {
            "stack": self.stack,
            "resources": [
                {"type": r.type, "name": r.name, "parent": self.by_urn(r.parent).name if r.parent else None,
                 "inputs": r.redacted}
                for r in self.resources
            ],
            "outputs": {k: SECRET if k in self.secret_outputs else v for k, v in self.outputs.items()},
        }


def unwrap_secrets(value, secret=lambda v: unwrap_secrets(rpc.unwrap_rpc_secret(v))):
    """Plain values: secrets unwrapped (or replaced, see redact_secrets); whole numbers, which the wire carries as
    doubles, back to ints."""
    if rpc.is_rpc_secret(value):
        return secret(value)
    if isinstance(value, dict):
        return {k: unwrap_secrets(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v, secret) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def redact_secrets(value):
    return unwrap_secrets(value, secret=lambda v: SECRET)


def recordable(value):
    """Assets and archives as what they hold, for assertions and printing: a file by its path and the SHA-256 of its
    content (the way the engine tells a changed file from an unchanged one)."""
    if isinstance(value, pulumi.AssetArchive):
        return {"archive": {name: recordable(item) for name, item in sorted(value.assets.items())}}
    if isinstance(value, pulumi.FileAsset):
        return {"file": str(value.path), "sha256": hashlib.sha256(Path(value.path).read_bytes()).hexdigest()}
    if isinstance(value, pulumi.StringAsset):
        return {"text": value.text}
    if isinstance(value, dict):
        return {k: recordable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [recordable(v) for v in value]
    return value


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, also recording parent, options and inputs, and marking secret outputs as the engine
    does (additionalSecretOutputs, and any output whose input was secret)."""

    def __init__(self, mocks: CloudMocks):
        super().__init__(mocks)
        self.recorded: list[Recorded] = []

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        sdk.ensure_event_loop()
        raw = rpc.deserialize_properties(request.object)
        inputs = unwrap_secrets(raw)
        args = pulumi.runtime.MockResourceArgs(typ=request.type, name=request.name, inputs=inputs,
                                               provider=request.provider, resource_id=request.importId,
                                               custom=request.custom or False)
        ident, state = self.mocks.new_resource(args)
        secret_keys = set(request.additionalSecretOutputs) | {k for k, v in raw.items() if rpc.is_rpc_secret(v)}
        state = {k: rpc.wrap_rpc_secret(v) if k in secret_keys else v for k, v in state.items()}
        self.recorded.append(Recorded(
            urn=urn, type=request.type, name=request.name,
            parent=None if request.parent.split("::")[2:3] == ["pulumi:pulumi:Stack"] else request.parent or None,
            custom=bool(request.custom), inputs=recordable(inputs), redacted=recordable(redact_secrets(raw)),
            outputs=recordable(unwrap_secrets(state)),
            provider=request.provider or None, protect=bool(request.protect),
            ignore_changes=list(request.ignoreChanges), delete_before_replace=bool(request.deleteBeforeReplace),
            custom_timeouts={k: v for k, v in (("create", request.customTimeouts.create),
                                               ("update", request.customTimeouts.update)) if v},
            dependencies={key: list(deps.urns) for key, deps in request.propertyDependencies.items() if deps.urns},
            depends_on=list(request.dependencies), aliases=self.alias_urns(request)))
        proto = sdk.sync_await(rpc.serialize_properties(state, {}))
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, ident, state)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=ident, object=proto)

    def alias_urns(self, request) -> list[str]:
        """The resource's aliases as URNs, resolved as the engine resolves them (an unset name, type or parent is
        the resource's own)."""
        urns = list(request.aliasURNs)
        for alias in request.aliases:
            if alias.urn:
                urns.append(alias.urn)
                continue
            spec = alias.spec
            parent = "" if spec.noParent else spec.parentUrn or request.parent
            if parent.split("::")[2:3] == ["pulumi:pulumi:Stack"]:
                parent = ""
            urns.append(self.make_urn(parent, spec.type or request.type, spec.name or request.name))
        return urns

    def RegisterResourceOutputs(self, request):
        outputs = unwrap_secrets(rpc.deserialize_properties(request.outputs))
        for r in self.recorded:
            if r.urn == request.urn:
                r.registered_outputs = outputs
        return super().RegisterResourceOutputs(request)


# --- running it


def project_name(root: Path = ROOT) -> str:
    return yaml.safe_load((root / "Pulumi.yaml").read_text())["name"]


def stack_config(stack: str, root: Path = ROOT) -> tuple[dict[str, str], list[str]]:
    """The config the CLI would hand the program for a stack: project defaults from Pulumi.yaml, then the stack
    file; keys namespaced, values as strings (objects and lists as JSON). Encrypted values are unreadable offline:
    they come through as "[secret]" and are listed as secret keys."""
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path.name}; the stacks are: "
                                + ", ".join(p.name[7:-5] for p in sorted(root.glob("Pulumi.*.yaml"))))
    stack_file = yaml.safe_load(path.read_text()) or {}
    values: dict[str, Any] = {}
    for key, spec in (project.get("config") or {}).items():
        value = spec.get("value", spec.get("default")) if isinstance(spec, dict) else spec
        if value is not None:
            values[_namespaced(key, project["name"])] = value
    for key, value in (stack_file.get("config") or {}).items():
        values[_namespaced(key, project["name"])] = value
    config, secret_keys = {}, []
    for key, value in values.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[key] = SECRET
            secret_keys.append(key)
        else:
            config[key] = encode_config_value(value)
    return config, secret_keys


def encode_config_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _namespaced(key: str, project: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def run(program: Callable[[], Any], *, project: str = "flask-aws", stack: str = "test",
        config: dict[str, str] | None = None, secret_keys: list[str] | None = None) -> Run:
    """Run any function as a Pulumi program under the mocks (preview=False) and record what it declared."""
    config = dict(config or {})
    region = config.get("aws:region", "eu-west-1")
    mocks = CloudMocks(region)
    monitor = RecordingMonitor(mocks)
    sdk.forget_root_resource()
    pulumi.runtime.set_all_config(config, secret_keys or [])
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    sdk.skip_stack_traces()
    sdk.clear_pending_work()
    # A run allocates a great many short-lived objects and few cycles: the cyclic collector, off for its length,
    # was half of each run's time (the parity report runs the program once per shaping setting).
    collecting = gc.isenabled()
    gc.disable()
    try:
        sdk.run_program(program)
    finally:
        if collecting:
            gc.enable()
    outputs, secret = {}, set()
    for key, value in pulumi.runtime.get_root_resource().outputs.items():
        out = pulumi.Output.from_input(value)
        outputs[key] = sdk.sync_await(out.future())
        if sdk.sync_await(out.is_secret()):
            secret.add(key)
    # Registration order depends on when each resource's inputs resolve; sorted, every run reads the same.
    resources = sorted(monitor.recorded, key=lambda r: (r.name, r.type))
    return Run(project=project, stack=stack, region=region, resources=resources, outputs=outputs,
               secret_outputs=secret, config=config, secret_keys=list(secret_keys or []))


def run_stack(stack: str, overrides: dict[str, Any] | None = None, *, root: Path = ROOT) -> Run:
    """Run the program in infra/ for a stack exactly as the Pulumi Python host does, with that stack's config.
    `overrides` (key -> value) are merged into the stack file's values, objects key by key."""
    config, secret_keys = stack_config(stack, root)
    project = project_name(root)
    return _run_program(root, project, stack, with_overrides(config, project, overrides or {}), secret_keys)


def rerun(earlier: Run, overrides: dict[str, Any]) -> Run:
    """The program of an earlier run_stack again, for the same stack and config but these overrides."""
    if earlier.root is None:
        raise ValueError("rerun() needs a run of the project's program (run_stack), not of a function (run)")
    return _run_program(earlier.root, earlier.project, earlier.stack,
                        with_overrides(earlier.config, earlier.project, overrides), earlier.secret_keys)


def with_overrides(config: dict[str, str], project: str, overrides: dict[str, Any]) -> dict[str, str]:
    """Config with `overrides` (key -> value) merged in, objects key by key."""
    config = dict(config)
    for key, value in overrides.items():
        key = _namespaced(key, project)
        if isinstance(value, dict) and key in config:
            value = tiers.merge(json.loads(config[key]), value)
        config[key] = encode_config_value(value)
    return config


def _run_program(root: Path, project: str, stack: str, config: dict[str, str], secret_keys: list[str]) -> Run:
    program = root / "infra"
    found = run(lambda: runpy.run_path(str(program), run_name="__main__"), project=project, stack=stack,
                config=config, secret_keys=secret_keys)
    found.root = root
    return found


def settings_of(run: Run):
    """The validated settings a stack run was given (raises settings.SettingsError as the program would)."""
    from infra import settings

    prefix = run.project + ":"
    raw = {key[len(prefix):]: value for key, value in run.config.items() if key.startswith(prefix)}
    return settings.from_config(run.project, run.stack, run.config.get("aws:region"), raw)

