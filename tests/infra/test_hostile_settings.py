"""Hostile stack files (generators in tests/strategies.py): whatever an operator writes, loading the settings either
gives values AWS takes or stops with the SettingsError that lists every problem, never a traceback."""

from __future__ import annotations

import json

from hypothesis import event, given
from hypothesis import strategies as st

from infra import settings, tiers
from infra.offline import harness
from infra.settings.values import WINDOW, rotation_hours
from tests.infra.conftest import STACKS
from tests.strategies import config_object, rotation_expressions


def stack_file(stack: str) -> dict:
    """The stack's own file over its tier's defaults: the generators start from a file that loads."""
    config, _ = harness.stack_config(stack)
    raw = {k.split(":", 1)[1]: json.loads(v) if v[:1] in "[{" else v
           for k, v in config.items() if k.startswith("flask-aws:")}
    return tiers.merge(tiers.defaults(stack), raw)


FILES = {stack: stack_file(stack) for stack in STACKS}


def test_the_generators_start_from_files_that_load():
    for stack, raw in FILES.items():
        assert settings.from_config("flask-aws", stack, "eu-west-1", raw).stack == stack


@given(stack=st.sampled_from(STACKS), data=st.data())
def test_any_stack_file_loads_or_lists_its_problems(stack, data):
    raw = data.draw(config_object(FILES[stack]))
    if data.draw(st.booleans()):  # as the CLI passes them: top-level values as JSON text
        raw = {key: value if isinstance(value, str) else json.dumps(value) for key, value in raw.items()}
    try:
        loaded = settings.from_config("flask-aws", stack, "eu-west-1", raw)
        event("loads")
    except settings.SettingsError as err:
        event("refused")
        assert err.problems and all(p.key and p.why and p.allowed for p in err.problems)
        assert str(err).count("\n  - ") == len(err.problems)
        return
    for schedule in (loaded.secrets.rotation_schedule, loaded.secrets.master_rotation_schedule):
        assert rotation_hours(schedule) is not None, schedule
    assert WINDOW.fullmatch(loaded.database.backup_window), loaded.database.backup_window


@given(rotation_expressions())
def test_a_rotation_schedule_is_understood_or_refused(expression):
    hours = rotation_hours(expression)
    if hours is not None:
        assert hours and hours <= set(range(24)), hours
    if hours and expression.startswith("cron("):  # windows at least four hours apart, across midnight too
        ordered = sorted(hours)
        assert all(b - a >= 4 for a, b in zip(ordered, [*ordered[1:], ordered[0] + 24], strict=True)), ordered


@given(low=st.integers(0, 23), span=st.integers(0, 23), step=st.integers(1, 23))
def test_cron_hour_ranges_open_the_windows_they_say(low, span, step):
    high = min(23, low + span)
    opened = sorted(range(low, high + 1, step))
    apart = all(b - a >= 4 for a, b in zip(opened, [*opened[1:], opened[0] + 24], strict=True))
    expected = set(opened) if apart else None
    assert rotation_hours(f"cron(0 {low}-{high}/{step} * * ? *)") == expected
    assert rotation_hours(f"cron(0 {','.join(map(str, opened))} ? * MON *)") == expected


@given(every=st.integers(1, 48))
def test_rate_hours_open_windows_from_midnight(every):
    hours = rotation_hours(f"rate({every} hours)")
    assert hours == (None if every < 4 else set(range(0, 24, every)))
