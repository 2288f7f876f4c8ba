"""Notes: a small JSON resource over PostgreSQL, read through the Redis cache."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import func, select

from webapp.cache import cache
from webapp.database import db, read_with_fallback, write_with_retry
from webapp.errors import ValidationError
from webapp.models import Note, serialize

COLUMNS = tuple(Note.__table__.c)  # reads select rows, not ORM objects: half the work per request

bp = Blueprint("notes", __name__, url_prefix="/api/notes")
LIST_VERSION = "notes:list-version"
MAX_PER_PAGE = 100
LIST_TTL_SECONDS = 5


def _payload(partial: bool) -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError({"body": "must be a JSON object (Content-Type: application/json)"}, status=400)
    fields, errors = {}, {}
    unknown = set(data) - {"title", "body"}
    for name in sorted(unknown):
        errors[name] = "unknown field"
    if "title" in data or not partial:
        title = data.get("title")
        if not isinstance(title, str) or not title.strip():
            errors["title"] = "required, a non-empty string"
        elif len(title) > 200:
            errors["title"] = "at most 200 characters"
        else:
            fields["title"] = title.strip()
    if "body" in data:
        body = data["body"]
        if not isinstance(body, str):
            errors["body"] = "must be a string"
        elif len(body) > 10_000:
            errors["body"] = "at most 10000 characters"
        else:
            fields["body"] = body
    if errors:
        raise ValidationError(errors)
    return fields


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: "must be a whole number"}, status=400) from None
    if not low <= value <= high:
        raise ValidationError({name: f"must be between {low} and {high}"}, status=400)
    return value


def _json(text: str) -> Response:
    return Response(text, mimetype="application/json")


def _note_key(note_id: int) -> str:
    return f"notes:{note_id}"


def _written(note_id: int, value: dict | None) -> None:
    """After a commit: the fresh note (or a tombstone) into the cache, and every cached list page retired."""
    cache.store(_note_key(note_id), value)
    cache.incr(LIST_VERSION)


@bp.get("")
def list_notes():
    page = _int_arg("page", 1, 1, 1_000_000)
    per_page = _int_arg("per_page", 20, 1, MAX_PER_PAGE)
    key = f"notes:list:{cache.version(LIST_VERSION)}:{page}:{per_page}"
    cached = cache.get(key)
    if cached is not None:
        return _json(cached)

    def read():
        total = db.session.scalar(select(func.count()).select_from(Note))
        rows = db.session.execute(select(*COLUMNS).order_by(Note.id.desc()).limit(per_page)
                                  .offset((page - 1) * per_page)).all()
        return {"items": [serialize(row) for row in rows], "page": page, "per_page": per_page, "total": total}

    # List pages live briefly: one computed on a lagging replica just after a write would otherwise be served for
    # the full TTL under the new version.
    return _json(cache.set(key, read_with_fallback(read), only_if_absent=True, ttl=LIST_TTL_SECONDS))


@bp.post("")
def create_note():
    fields = _payload(partial=False)

    def create() -> dict:
        note = Note(title=fields["title"], body=fields.get("body", ""))
        db.session.add(note)
        db.session.commit()
        return note.to_dict()

    result = write_with_retry(create)
    _written(result["id"], result)
    return jsonify(result), 201, {"Location": f"/api/notes/{result['id']}"}


@bp.get("/<int:note_id>")
def get_note(note_id: int):
    cached = cache.get(_note_key(note_id))
    if cached == "null":  # tombstone of a deleted note
        return jsonify(error="not_found", message=f"no note {note_id}"), 404
    if cached is not None:
        return _json(cached)
    row = read_with_fallback(lambda: db.session.execute(select(*COLUMNS).where(Note.id == note_id)).first())
    if row is None:
        return jsonify(error="not_found", message=f"no note {note_id}"), 404
    return _json(cache.set(_note_key(note_id), serialize(row), only_if_absent=True))


@bp.route("/<int:note_id>", methods=["PUT", "PATCH"])
def update_note(note_id: int):
    fields = _payload(partial=request.method == "PATCH")

    def update() -> dict | None:
        note = db.session.get(Note, note_id, with_for_update=True)
        if note is None:
            return None
        for name, value in fields.items():
            setattr(note, name, value)
        db.session.commit()
        return note.to_dict()

    result = write_with_retry(update)
    if result is None:
        return jsonify(error="not_found", message=f"no note {note_id}"), 404
    _written(note_id, result)
    return jsonify(result)


@bp.delete("/<int:note_id>")
def delete_note(note_id: int):
    def delete() -> bool:
        note = db.session.get(Note, note_id, with_for_update=True)
        if note is None:
            return False
        db.session.delete(note)
        db.session.commit()
        return True

    if not write_with_retry(delete):
        return jsonify(error="not_found", message=f"no note {note_id}"), 404
    _written(note_id, None)
    return "", 204
