"""The example resource: notes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.database import db


def utcnow() -> datetime:
    return datetime.now(UTC)


class Note(db.Model):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    def to_dict(self) -> dict:
        return serialize(self)


def serialize(note) -> dict:
    """A note, or a row of the notes table, as the API returns it: times always with their offset (SQLite, the
    development database, hands them back without one; they were written in UTC)."""
    return {"id": note.id, "title": note.title, "body": note.body,
            "created_at": _aware(note.created_at).isoformat(), "updated_at": _aware(note.updated_at).isoformat()}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
