"""API tokens: who may write. A token is shown once, when it is made; the database keeps only its SHA-256 (a token
is 256 random bits, so a fast hash is the right one: nothing to brute-force), its name, and when it was made, last
used and revoked. Every request looks its token up, so a revoked token fails at once in every worker and task."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, String, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Mapped, mapped_column

from webapp.database import db

log = logging.getLogger(__name__)
PREFIX = "notes_"  # makes a leaked token recognisable to secret scanners and to people
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
MAX_TOKEN_LENGTH = 128
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is this precise: not a write per request
_touch_paused_until = [0.0]  # after a failed record (the primary away), none tried for TOUCH_EVERY in this process


class TokenError(Exception):
    """A token command cannot do what was asked; the message says why."""


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create(name: str) -> str:
    """A new token for `name`; the only time its text exists outside the client."""
    if not NAME.fullmatch(name):
        raise TokenError(f"token name {name!r}: use 1-63 lowercase letters, digits, '.', '_' or '-', starting with "
                         "a letter or digit")
    if db.session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise TokenError(f"a token named {name} exists; revoke it or choose another name")
    token = PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(name=name, token_hash=digest(token), created_at=datetime.now(UTC)))
    db.session.commit()
    return token


def revoke(name: str) -> None:
    found = db.session.scalar(select(ApiToken).where(ApiToken.name == name))
    if found is None:
        raise TokenError(f"no token named {name!r} (flask tokens list shows them)")
    if found.revoked_at is None:
        found.revoked_at = datetime.now(UTC)
        db.session.commit()


def listed() -> list[ApiToken]:
    return list(db.session.scalars(select(ApiToken).order_by(ApiToken.name)))


FIELDS = (ApiToken.id, ApiToken.name, ApiToken.token_hash, ApiToken.last_used_at, ApiToken.revoked_at)


def find(token: str):
    """The token's row (revoked or not: id, name, token_hash, last_used_at, revoked_at), or None. Compared in
    constant time after the indexed lookup."""
    if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        return None
    wanted = digest(token)
    found = db.session.execute(select(*FIELDS).where(ApiToken.token_hash == wanted)).first()
    if found is None or not hmac.compare_digest(found.token_hash, wanted):
        return None
    return found


def touch(found) -> None:
    """Record the use, at most once a minute per token, on its own connection; a failure costs the request
    nothing (the request may be a read served while the primary is away)."""
    now = datetime.now(UTC)
    if time.monotonic() < _touch_paused_until[0]:
        return
    last = found.last_used_at
    if last is not None and (last if last.tzinfo else last.replace(tzinfo=UTC)) > now - TOUCH_EVERY:
        return
    try:
        with db.engine.begin() as connection:
            connection.execute(update(ApiToken).where(ApiToken.id == found.id).values(last_used_at=now))
    except (DBAPIError, PoolTimeout) as err:
        _touch_paused_until[0] = time.monotonic() + TOUCH_EVERY.total_seconds()  # not a wait on every request
        log.warning("could not record a token's use", extra={"token": found.name,
                                                             "error": str(getattr(err, "orig", err))})
