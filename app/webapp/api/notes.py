"""Notes: a small JSON resource over PostgreSQL, read through the Redis cache. Writes need a token, checked
before the request body (webapp.auth), and are limited per token (webapp.limits). Requests are validated, and the
OpenAPI description written, by APIFlask from the schemas in schemas.py; reads answer with the cached JSON text
as it is (the schemas document it, they do not re-serialize it)."""

from __future__ import annotations

import json

from apiflask import APIBlueprint, abort
from flask import Response, g, jsonify
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from webapp import idempotency
from webapp.api.schemas import MAX_ID, ListQuery, NoteIn, NoteList, NoteOut, NotePatch, WriteHeaders
from webapp.auth import auth, reads
from webapp.cache import cache, dumps
from webapp.database import db, read_with_fallback, write_with_retry
from webapp.json_body import json_body
from webapp.limits import writes
from webapp.models import Note, serialize

COLUMNS = tuple(Note.__table__.c)  # reads select rows, not ORM objects: half the work per request
COUNT_LIMIT = 10_000  # the total is counted up to here: no request counts a whole large table

bp = APIBlueprint("notes", __name__, url_prefix="/api/notes", tag="notes")
LIST_VERSION = "notes:list-version"
LIST_TTL_SECONDS = 5


# Answers any operation can give besides its own; APIFlask adds 404 (path ids) and 422 (validation) itself, all
# in the one error shape (errors.ERROR_SCHEMA).
ERRORS = {400: "the body is not JSON, empty, or nested too deeply", 403: "the token was revoked",
          409: "the Idempotency-Key was used with a different request",
          413: "the body is larger than the limit", 415: "the body is not sent as application/json",
          503: "the database is unavailable: retry after the Retry-After seconds"}
READ_ERRORS = {503: ERRORS[503]}


def _json(text: str, status: int = 200, headers: dict | None = None) -> Response:
    return Response(text, status=status, headers=headers, mimetype="application/json")



def _note_key(note_id: int) -> str:
    return f"notes:{note_id}"


def _missing(note_id: int):
    abort(404, f"no note {note_id}")


def _written(note_id: int, value: dict | None) -> None:
    """After a commit: the fresh note (or a tombstone) into the cache, and every cached list page retired."""
    cache.store(_note_key(note_id), value)
    cache.incr(LIST_VERSION)


@bp.post("")
@bp.auth_required(auth)
@writes
@json_body
@bp.input(NoteIn, arg_name="fields")
@bp.input(WriteHeaders, location="headers", arg_name="headers")
@bp.output(NoteOut, status_code=201, description="created; its address in the Location header")
@bp.doc(responses=ERRORS)
def create_note(fields: dict, headers: dict):
    key, token = headers.get("idempotency_key"), g.token_name
    request_digest = idempotency.digest(fields) if key else ""

    def create() -> dict | Response:
        if key and (replayed := idempotency.replay(token, key, request_digest)) is not None:
            return replayed
        note = Note(title=fields["title"], body=fields["body"])
        db.session.add(note)
        db.session.flush()
        result = note.to_dict()  # before COMMIT: nothing is read after it, so a commit never ends in an error
        if key:  # in the same transaction as the note: both or neither
            idempotency.remember(token, key, request_digest, result["id"], 201, dumps(result))
        db.session.commit()
        return result

    try:
        result = write_with_retry(create)
    except IntegrityError:
        if not key:
            raise
        db.session.rollback()  # the same key, sent twice at once: the other request's note is the one
        result = idempotency.replay(token, key, request_digest)
        if result is None:  # ...unless it was deleted in between, and its key with it: this one makes the note
            result = write_with_retry(create)
    if isinstance(result, Response):
        result.headers["Location"] = f"/api/notes/{json.loads(result.get_data())['id']}"
        return result
    _written(result["id"], result)
    return _json(dumps(result), 201, {"Location": f"/api/notes/{result['id']}"})


@bp.get("/<int:note_id>")
@reads
@bp.output(NoteOut)
@bp.doc(responses=READ_ERRORS)
def get_note(note_id: int):
    if note_id > MAX_ID:
        _missing(note_id)
    cached = cache.get(_note_key(note_id))
    if cached == "null":  # tombstone of a deleted note
        _missing(note_id)
    if cached is not None:
        return _json(cached)
    row = read_with_fallback(lambda: db.session.execute(select(*COLUMNS).where(Note.id == note_id)).first())
    if row is None:
        _missing(note_id)
    return _json(cache.set(_note_key(note_id), serialize(row), only_if_absent=True))


# Declared after the single-note routes: they register NoteOut in the description before the list nests it
# (the other way round, APIFlask registers it twice, as NoteOut and NoteOut1).
@bp.get("")
@reads
@bp.input(ListQuery, location="query", arg_name="query")
@bp.output(NoteList, description="newest first")
@bp.doc(responses=READ_ERRORS)
def list_notes(query: dict):
    page, per_page = query["page"], query["per_page"]
    key = f"notes:list:{cache.version(LIST_VERSION)}:{page}:{per_page}"
    cached = cache.get(key)
    if cached is not None:
        return _json(cached)

    def read():
        total = db.session.scalar(select(func.count()).select_from(select(Note.id).limit(COUNT_LIMIT).subquery()))
        rows = db.session.execute(select(*COLUMNS).order_by(Note.id.desc()).limit(per_page)
                                  .offset((page - 1) * per_page)).all()
        return {"items": [serialize(row) for row in rows], "page": page, "per_page": per_page, "total": total}

    # List pages live briefly: one computed on a lagging replica just after a write would otherwise be served for
    # the full TTL under the new version.
    return _json(cache.set(key, read_with_fallback(read), only_if_absent=True, ttl=LIST_TTL_SECONDS))


def _update(note_id: int, fields: dict):
    if note_id > MAX_ID:
        _missing(note_id)

    def update() -> dict | None:
        note = db.session.get(Note, note_id, with_for_update=True)
        if note is None:
            return None
        for name, value in fields.items():
            setattr(note, name, value)
        db.session.flush()
        result = note.to_dict()
        db.session.commit()
        return result

    result = write_with_retry(update)
    if result is None:
        _missing(note_id)
    _written(note_id, result)
    return jsonify(result)


@bp.put("/<int:note_id>")
@bp.auth_required(auth)
@writes
@json_body
@bp.input(NoteIn, arg_name="fields")
@bp.output(NoteOut)
@bp.doc(responses=ERRORS)
def replace_note(note_id: int, fields: dict):
    return _update(note_id, fields)


@bp.patch("/<int:note_id>")
@bp.auth_required(auth)
@writes
@json_body
@bp.input(NotePatch, arg_name="fields")
@bp.output(NoteOut)
@bp.doc(responses=ERRORS)
def update_note(note_id: int, fields: dict):
    return _update(note_id, fields)


@bp.delete("/<int:note_id>")
@bp.auth_required(auth)
@writes
@bp.output({}, status_code=204)
@bp.doc(responses=ERRORS)
def delete_note(note_id: int):
    if note_id > MAX_ID:
        _missing(note_id)

    def delete() -> bool:
        note = db.session.get(Note, note_id, with_for_update=True)
        if note is None:
            return False
        db.session.delete(note)
        db.session.commit()
        return True

    if not write_with_retry(delete):
        _missing(note_id)
    _written(note_id, None)
    return Response(status=204)
