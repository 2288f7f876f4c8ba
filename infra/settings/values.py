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
        if not regex.match(value):
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
    if not WINDOW.match(value) or minutes(value) < 30:
        return "malformed or shorter than 30 minutes", "hh24:mi-hh24:mi in UTC, at least 30 minutes, e.g. 03:00-04:00"


def weekly_window(value):
    if not WEEKLY_WINDOW.match(value) or weekly_range(value)[1] - weekly_range(value)[0] < 60:
        return "malformed or shorter than 60 minutes", "ddd:hh24:mi-ddd:hh24:mi in UTC, at least 60 minutes, " \
            "e.g. sun:04:30-sun:05:30"


def region_name(value):
    if value and not REGION.match(value):
        return "not an AWS region name", "a region such as eu-west-1, or empty for none"


def emails(value: list[str]) -> tuple[str, str] | None:
    bad = [v for v in value if not re.match(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", v, re.IGNORECASE)]
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
    (every N hours, or once a day), a cron() at its hour field (numbers, lists, ranges, steps, *). None when the
    expression is not of these forms (its own check reports it)."""
    rate = re.fullmatch(r"rate\((\d+) (hours|days)\)", expression)
    if rate:
        every = int(rate.group(1))
        return set(range(0, 24, every)) if rate.group(2) == "hours" and every < 24 else {0}
    cron = re.fullmatch(r"cron\((\S+) (\S+) .+\)", expression)
    if not cron:
        return None
    hours: set[int] = set()
    for part in cron.group(2).split(","):
        span, _, step = part.partition("/")
        low, _, high = span.partition("-")
        if span == "*":
            low, high = "0", "23"
        if not (low.isdigit() and (high or low).isdigit() and (not step or step.isdigit())):
            return None
        hours |= set(range(int(low), int(high or (23 if step else low)) + 1, int(step or 1)))
    return hours
