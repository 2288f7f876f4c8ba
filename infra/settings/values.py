"""Checks on one settings value. Each takes the value and returns None when it is fine, or (why, allowed)."""

from __future__ import annotations

import ipaddress
import re

LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
NAT_MODES = ("none", "single", "perAz")
REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
WEEKLY_WINDOW = re.compile(
    r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)-(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)$"
)
# The `limits` package's notation: "600 per minute", "10/second;500/hour". The application parses it
# with that package at start; this is the same grammar, so a stack cannot ship a value every task would refuse.
RATE_LIMIT = r"[1-9][0-9]{0,8} ?(?:/|per) ?(?:[1-9][0-9]{0,5} )?(?:second|minute|hour|day|month|year)s?"  # not \d: ٠
RATE_LIMITS = rf"{RATE_LIMIT}(?:;{RATE_LIMIT})*"
HOUR = re.compile(r"[01]?[0-9]|2[0-3]")
STEP = re.compile(r"[1-9][0-9]?")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def between(low: int, high: int):
    def check(value):
        if not low <= value <= high:
            return "out of range", f"{low}..{high}"
    return check


def one_of(*allowed):
    def check(value):
        if value not in allowed:
            return "not a supported value", ", ".join(str(a) for a in allowed)
    return check


def matches(pattern: str, allowed: str):
    regex = re.compile(pattern)

    def check(value):
        if not regex.fullmatch(value):
            return "malformed", allowed
    return check


def cidr_block(value):
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as err:
        return f"not a valid IPv4 network ({err})", "a network address with prefix, e.g. 10.20.0.0/16"
    if network.version != 4 or not 16 <= network.prefixlen <= 24:
        return "AWS takes VPC blocks from /16 to /28, and 3 subnets per AZ need at least a /24", \
            "an IPv4 CIDR from /16 to /24"


def daily_window(value):
    if not WINDOW.fullmatch(value) or minutes(value) < 30:
        return "malformed or shorter than 30 minutes", "hh24:mi-hh24:mi in UTC, at least 30 minutes, e.g. 03:00-04:00"


def weekly_window(value):
    if not WEEKLY_WINDOW.fullmatch(value) or weekly_range(value)[1] - weekly_range(value)[0] < 60:
        return "malformed or shorter than 60 minutes", "ddd:hh24:mi-ddd:hh24:mi in UTC, at least 60 minutes, " \
            "e.g. sun:04:30-sun:05:30"


def region_name(value):
    if value and not REGION.fullmatch(value):
        return "not an AWS region name", "a region such as eu-west-1, or empty for none"


def emails(value: list[str]) -> tuple[str, str] | None:
    bad = [v for v in value if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", v, re.IGNORECASE)]
    return ("not an email address: " + ", ".join(bad), "addresses such as ops@example.com") if bad else None


def zero_or_between(low: int, high: int, why: str):
    def check(value):
        if value != 0 and not low <= value <= high:
            return why, f"0 or {low}..{high}"
    return check


# --- time windows


def minutes(window: str) -> int:
    """Length of a daily window hh:mm-hh:mm in minutes (crossing midnight is fine)."""
    start, end = window.split("-")
    to_min = [int(t.split(":")[0]) * 60 + int(t.split(":")[1]) for t in (start, end)]
    return (to_min[1] - to_min[0]) % (24 * 60)


def weekly_range(window: str) -> tuple[int, int]:
    """A weekly window ddd:hh:mm-ddd:hh:mm as (first, last) minute of the week, last > first."""
    start, end = window.split("-")

    def at(t):
        day, hour, minute = t.split(":")
        return DAYS.index(day) * 1440 + int(hour) * 60 + int(minute)
    first, last = at(start), at(end)
    return first, last if last > first else last + 7 * 1440


def overlaps(daily: str, weekly: str) -> bool:
    """Does a daily window (hh:mm-hh:mm) fall, on any day, into a weekly window (ddd:hh:mm-ddd:hh:mm)?"""
    start, end = weekly_range(weekly)
    first = int(daily[:2]) * 60 + int(daily[3:5])
    length = minutes(daily)
    for day in range(-1, 8):
        begin = day * 1440 + first
        if begin < end and start < begin + length:
            return True
    return False


# --- rotation windows


def rotation_hours(expression: str) -> set[int] | None:
    """The UTC hours at which a Secrets Manager rotation schedule opens a window: a rate() opens them from midnight
    (every N hours, N >= 4, or once every N days), a cron() at its hour field (numbers 0-23, lists, ranges, steps,
    *). None when Secrets Manager would not take the expression: another form, an hour out of range, or windows
    less than four hours apart (its rotations run at most every four hours)."""
    rate = re.fullmatch(r"rate\(([1-9][0-9]{0,3}) (hours|days)\)", expression)
    if rate:
        every, unit = int(rate.group(1)), rate.group(2)
        if unit == "days":
            return {0}
        return set(range(0, 24, every)) if every >= 4 else None
    cron = re.fullmatch(r"cron\(([0-9*,/-]+) ([0-9*,/-]+) (\S+) (\S+) (\S+) (\S+)\)", expression)
    if not cron:
        return None
    hours: set[int] = set()
    for part in cron.group(2).split(","):
        span, _, step = part.partition("/")
        low, _, high = ("0", "-", "23") if span == "*" else span.partition("-")
        if step and not high:
            high = "23"
        if not (HOUR.fullmatch(low) and HOUR.fullmatch(high or low) and (not step or STEP.fullmatch(step))):
            return None
        if int(low) > int(high or low):
            return None
        hours |= set(range(int(low), int(high or low) + 1, int(step or 1)))
    ordered = sorted(hours)
    gaps = [b - a for a, b in zip(ordered, ordered[1:] + [ordered[0] + 24], strict=True)]
    return hours if min(gaps) >= 4 else None


def rotation_schedule(value):
    if rotation_hours(value) is None:
        return "not a schedule Secrets Manager takes", "rate(N hours) with N >= 4, rate(N days), or cron(minutes " \
            "hours day-of-month month day-of-week year) with hours 0-23 (numbers, lists, ranges, steps or *) at " \
            "least four hours apart, e.g. cron(0 1 * * ? *)"
