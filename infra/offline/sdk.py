"""The private parts of the Pulumi SDK the offline harness needs, in one place.

Pulumi's mock engine (`pulumi.runtime.set_mocks`) is public, but running a whole program under it and recording
what it declares needs a few internals: the SDK's own way to run a coroutine to completion from synchronous code,
its mock monitor's event-loop helper, the reset of its per-program state, and the stack walk it does at every
registration (turned off here: the mock engine has no use for source positions, and it was a tenth of the plan's
time). They are pinned with the SDK (requirements.txt); tests/infra/test_sdk.py fails, naming the piece, when an
upgrade moves one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pulumi.runtime import mocks as _mocks
from pulumi.runtime import resource as _resource
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.settings import SETTINGS, set_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await


def sync_await(awaitable: Awaitable):
    """Run an awaitable to completion on the SDK's event loop, from synchronous code (the SDK's `_sync_await`)."""
    return _sync_await(awaitable)


def ensure_event_loop() -> None:
    """What the SDK's MockMonitor does before it deserializes a registration (there is a loop to attach to)."""
    _mocks._ensure_event_loop()


def forget_root_resource() -> None:
    """Forget the previous program's stack resource, so that set_mocks creates a new one."""
    set_root_resource(None)


def clear_pending_work() -> None:
    """Forget the previous program's pending RPCs and unresolved outputs."""
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()


def skip_stack_traces() -> None:
    """Register resources without walking the Python stack for their source positions."""
    if not callable(getattr(_resource, "_get_stack_trace", None)):
        raise RuntimeError("pulumi.runtime.resource._get_stack_trace is gone: update infra/offline/sdk.py for this "
                           "Pulumi SDK")
    _resource._get_stack_trace = _no_stack_trace


def run_program(program: Callable[[], object]) -> None:
    """Run a Pulumi program function to completion, as the language host does."""
    sync_await(run_pulumi_func(program))


def _no_stack_trace():
    return source_pb2.StackTrace()
