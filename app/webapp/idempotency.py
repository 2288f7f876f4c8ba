"""Idempotency keys: a client that sends `Idempotency-Key` with a POST and retries it (its connection dropped, it got
a 503, it timed out) gets the first answer again instead of a second note. The key, a digest of the request and the
answer are written in the same transaction as the note, so either both exist or neither does, and the key goes
when the note is deleted (a foreign key, ON DELETE CASCADE); keys are per token and kept for KEEP (then forgotten,
and a retry after that makes a new note)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from apiflask import abort
from flask import Response
from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from webapp.database import db

KEEP = timedelta(hours=24)
HEADER = "Idempotency-Key"


class IdempotencyKey(db.Model):
    __tablename__ = "idempotency_keys"

    token_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_digest: Mapped[str] = mapped_column(String(64))
    note_id: Mapped[int] = mapped_column(ForeignKey("notes.id", ondelete="CASCADE"), index=True)
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def digest(fields: dict) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass"))\
        .hexdigest()


def replay(token_name: str, key: str, request_digest: str) -> Response | None:
    """The first answer for this token and key, if it is still kept; a 409 if the key came with another request
    (the key's stored request conflicts with this one: the IETF draft suggests 422, but 422 here means the request
    breaks the API's description, which this one does not)."""
    found = db.session.execute(select(IdempotencyKey.request_digest, IdempotencyKey.status, IdempotencyKey.body)
                               .where(IdempotencyKey.token_name == token_name, IdempotencyKey.key == key,
                                      IdempotencyKey.created_at > datetime.now(UTC) - KEEP)).first()
    if found is None:
        return None
    if found.request_digest != request_digest:
        abort(409, f"this {HEADER} was used with a different request; use a new key for a new request")
    response = Response(found.body, status=found.status, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def remember(token_name: str, key: str, request_digest: str, note_id: int, status: int, body: str) -> None:
    """In the caller's transaction, before its COMMIT; this token's expired keys go at the same time."""
    now = datetime.now(UTC)
    db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.token_name == token_name,
                                                   IdempotencyKey.created_at <= now - KEEP))
    db.session.add(IdempotencyKey(token_name=token_name, key=key, request_digest=request_digest, note_id=note_id,
                                  status=status, body=body, created_at=now))
