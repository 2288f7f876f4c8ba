"""The notes API's shapes, as marshmallow schemas: APIFlask validates each request with them and writes the OpenAPI
description (/api/openapi.json) from the same objects, so the description cannot drift from what is enforced.

Each rule here is one the description can state (lengths, ranges, patterns), so a request the description allows is
a request the API accepts; the one check it cannot state is lone surrogates, which JSON can carry (\\ud800) and
PostgreSQL cannot store: refused the same way, as 422 naming the field."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import DateTime, Integer, List, Nested, String
from apiflask.validators import Length, Range, Regexp
from marshmallow import EXCLUDE, ValidationError

MAX_TITLE = 200
MAX_BODY = 10_000
MAX_PER_PAGE = 100
MAX_PAGE = 100  # page * per_page stays under 10 000 rows skipped: no request walks the table
MAX_ID = 2**31 - 1  # the notes.id column is a PostgreSQL integer


class FullMatch(Regexp):
    """marshmallow's Regexp with the whole value matched: Regexp uses re.match, where `$` also matches before a
    final newline, so "title\n" passed a pattern that forbids control characters (schemathesis found it). The
    pattern still goes into the description as it is (apispec reads Regexp's)."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


NO_CONTROL_CHARACTERS = FullMatch(r"^[^\u0000-\u001f\u007f]*$", error="must not hold control characters")
NO_NUL = FullMatch(r"^[^\u0000]*$", error="must not hold a NUL character")


def no_lone_surrogates(value: str) -> None:
    if any("\ud800" <= c <= "\udfff" for c in value):
        raise ValidationError("must not hold unpaired surrogates (\\ud800-\\udfff): send valid Unicode")


class NoteIn(Schema):
    """A whole note (POST, PUT)."""

    title = String(required=True, validate=[Length(1, MAX_TITLE), NO_CONTROL_CHARACTERS, no_lone_surrogates],
                   metadata={"description": "1 to 200 characters, no control characters"})
    body = String(load_default="", validate=[Length(0, MAX_BODY), NO_NUL, no_lone_surrogates],
                  metadata={"description": "up to 10 000 characters"})


class NotePatch(NoteIn):
    """Some fields of a note (PATCH); none changes nothing."""

    title = String(validate=[Length(1, MAX_TITLE), NO_CONTROL_CHARACTERS, no_lone_surrogates])
    body = String(validate=[Length(0, MAX_BODY), NO_NUL, no_lone_surrogates])


class WriteHeaders(Schema):
    """Headers a create takes besides the token."""

    idempotency_key = String(data_key="Idempotency-Key", validate=[Length(1, 255), FullMatch(r"^[\x21-\x7e]+$")],
                             metadata={"description": "any 1-255 printable ASCII characters, e.g. a UUID: a retry "
                                                      "with the same key and body within 24 h gets the first answer "
                                                      "(Idempotent-Replayed: true) instead of a second note"})

    class Meta:
        unknown = EXCLUDE


class NoteOut(Schema):
    id = Integer(required=True)
    title = String(required=True)
    body = String(required=True)
    created_at = DateTime(required=True, metadata={"description": "ISO 8601 with its UTC offset"})
    updated_at = DateTime(required=True)


class ListQuery(Schema):
    page = Integer(load_default=1, validate=Range(1, MAX_PAGE))
    per_page = Integer(load_default=20, validate=Range(1, MAX_PER_PAGE))


class NoteList(Schema):
    items = List(Nested(NoteOut), required=True)
    page = Integer(required=True)
    per_page = Integer(required=True)
    total = Integer(required=True, metadata={"description": "notes in all (counted up to 10 000)"})


def describe(spec: dict) -> dict:
    """What APIFlask leaves out of the description: a request body is required wherever an operation takes one
    (an empty POST is a 422, so the description must not call it optional)."""
    for operations in spec["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["requestBody"]["required"] = True
    return spec
