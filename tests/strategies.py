"""Hypothesis generators for hostile input: what an operator types into a stack file or a secret, and what a client
sends. Kept here, shared, so that a new code path that reads such input meets the same generators.

The suite's profile (tests/conftest.py) makes every run derandomized (the same examples each time) and bounded."""

from __future__ import annotations

from hypothesis import strategies as st

# Characters that slip past a careless check: line ends ($ matches before a final newline), other digits
# (str.isdigit() accepts them, int() does not always), look-alikes, NUL, and the separators of the formats we parse.
TRICKY = ["\n", "\r\n", "\t", " ", "\x00", "²", "٣", "０", "\u00a0", "\u200b", "ı", "K", "-", "/", ",", "*", ":",
          "(", ")", "?", "%", "'", '"', "\\", "$", "{", "}"]


def hostile_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Text mixing any characters with the tricky ones."""
    return st.lists(st.one_of(st.sampled_from(TRICKY), st.characters(), st.text(max_size=3)),
                    max_size=max_size).map("".join)


@st.composite
def near(draw, valid: str) -> str:
    """A valid value slightly wrong: a character added, dropped or swapped for a tricky one, or padded."""
    i = draw(st.integers(0, len(valid)))
    c = draw(st.sampled_from(TRICKY))
    return draw(st.sampled_from([valid[:i] + c + valid[i:], valid[:i] + valid[i + 1:], valid[:i] + c + valid[i + 1:],
                                 c + valid + c]))


def json_values(max_leaves: int = 8) -> st.SearchStrategy:
    """Any JSON value: what a YAML stack file or a secret's JSON text can hold."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                        hostile_text(20))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(hostile_text(10), inner, max_size=4)),
                        max_leaves=max_leaves)


def like(value) -> st.SearchStrategy:
    """Values an operator might put where `value` belongs: the value itself, a near miss, another type, any JSON."""
    options = [st.just(value), json_values(4)]
    if isinstance(value, str):
        options.append(near(value))
    elif isinstance(value, bool):
        options.append(st.sampled_from(["true", "yes", 1, 0]))
    elif isinstance(value, int):
        options.append(st.integers(min_value=value - 2, max_value=value + 2) | st.integers() | st.just(str(value)))
    elif isinstance(value, list):
        options.append(st.lists(st.one_of(*(like(v) for v in value[:1]), hostile_text(10)), max_size=3))
    elif isinstance(value, dict):
        options.append(config_object(value))
    return st.one_of(*options)


@st.composite
def config_object(draw, defaults: dict) -> dict:
    """An object of config keys shaped like `defaults`, a few keys changed (nested ones too) or dropped, now and then
    an unknown one added: most examples are near a file that loads, so both outcomes are exercised."""
    out = dict(defaults)
    for key in draw(st.lists(st.sampled_from(sorted(defaults)), max_size=3, unique=True)) if defaults else ():
        if draw(st.integers(0, 4)) == 0:
            del out[key]
        else:
            out[key] = draw(like(defaults[key]))
    return {**draw(st.dictionaries(hostile_text(12), json_values(2), max_size=1)), **out}


def rotation_expressions() -> st.SearchStrategy[str]:
    """Schedule expressions in the forms Secrets Manager knows, right and wrong, and near misses of them."""
    number = st.integers(-1, 30).map(str) | hostile_text(3)
    hours = st.lists(st.one_of(number, st.builds("{}-{}".format, number, number),
                               st.builds("{}/{}".format, st.sampled_from(["*", "1", "2-20"]), number), st.just("*")),
                     min_size=1, max_size=3).map(",".join)
    cron = st.builds("cron({} {} {} {} {} {})".format, st.sampled_from(["0", "30", "*"]), hours,
                     st.sampled_from(["*", "?", "1"]), st.just("*"), st.sampled_from(["?", "MON", "*"]), st.just("*"))
    rate = st.builds("rate({} {})".format, number, st.sampled_from(["hours", "days", "hour", "minutes"]))
    return st.one_of(cron, rate, near("cron(0 1 * * ? *)"), near("rate(4 hours)"), hostile_text())
