"""The private parts of the Pulumi SDK the harness and the settings loader use (infra/offline/sdk.py,
infra/settings/load.py) are still there, with the shape used: an SDK upgrade that moves one fails here, by name,
rather than somewhere in a plan."""

import asyncio
import inspect

import pulumi
from pulumi.runtime import mocks, resource
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.sync_await import _sync_await

from infra.offline import harness, sdk


def test_sync_await_runs_a_coroutine_from_synchronous_code():
    async def answer():
        await asyncio.sleep(0)
        return 42

    assert _sync_await(answer()) == 42
    assert sdk.sync_await(answer()) == 42


def test_the_mock_monitor_still_has_its_event_loop_helper():
    assert callable(mocks._ensure_event_loop)
    assert inspect.signature(mocks._ensure_event_loop).parameters == {}
    sdk.ensure_event_loop()


def test_the_stack_walk_is_still_the_function_the_harness_replaces():
    """The SDK defines _get_stack_trace in pulumi.runtime.resource and calls it by that module-level name at
    registration, so replacing the name skips the walk (the harness may have replaced it already)."""
    source = inspect.getsource(resource)
    assert "def _get_stack_trace(" in source and source.count("_get_stack_trace(") >= 2
    sdk.skip_stack_traces()
    assert resource._get_stack_trace.__module__ == sdk.__name__
    assert resource._get_stack_trace() == source_pb2.StackTrace()


def test_the_per_program_state_can_still_be_cleared():
    assert callable(SETTINGS.rpc_manager.clear) and callable(SETTINGS.outputs.clear)
    sdk.clear_pending_work()
    sdk.forget_root_resource()
    assert pulumi.runtime.get_root_resource() is None


def test_the_config_map_the_loader_lists_keys_from_is_still_there():
    harness.run(lambda: None, config={"flask-aws:netwrk": "{}", "aws:region": "eu-west-1"})
    assert "flask-aws:netwrk" in pulumi.runtime.config.CONFIG.get()


def test_settings_load_from_the_environment_the_language_host_sets(monkeypatch):
    """A real `pulumi up`: the config arrives as PULUMI_CONFIG (JSON), typos included, and the SDK's map is empty."""
    import json

    from infra import settings

    config, _ = harness.stack_config("dev")
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({**config, "flask-aws:netwrk": "{}"}))
    loaded = {}

    def program():
        try:
            settings.load()
        except settings.SettingsError as err:
            loaded["problems"] = [p.key for p in err.problems]

    harness.run(program, project="flask-aws", stack="dev", config={})
    assert loaded["problems"] == ["flask-aws:netwrk"]  # every other key of Pulumi.dev.yaml read and valid
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    harness.run(lambda: loaded.update(settings=settings.load()), project="flask-aws", stack="dev", config={})
    assert loaded["settings"].network.cidr == "10.10.0.0/16" and loaded["settings"].region == "eu-west-1"


def test_the_mock_monitor_still_has_what_the_recording_monitor_builds_on():
    """harness.RecordingMonitor subclasses the SDK's MockMonitor and uses its URN maker and registrations."""
    monitor = mocks.MockMonitor(harness.CloudMocks("eu-west-1"))
    assert monitor.make_urn("", "aws:s3/bucket:Bucket", "b").endswith("::aws:s3/bucket:Bucket::b")
    assert isinstance(monitor.resources, dict)
    assert mocks.MockMonitor.ResourceRegistration("urn", "id", {}).urn == "urn"
