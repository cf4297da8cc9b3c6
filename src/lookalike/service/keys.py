"""API keys and roles. A key is shown once, at creation; the index keeps only its SHA-256.

Keys are 32 random bytes (urlsafe base64), so a plain SHA-256 is enough to store them: there is no
password to brute-force. `lk_<prefix>_<secret>`: the prefix lets `keys list` and the logs name a key
without revealing it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from lookalike.service.store import ServiceStore

ROLES = ("reader", "writer", "admin")  # each role can do everything the ones before it can
PREFIX_LEN = 8  # hex digits naming a key (ids are shorter: under 10 million keys)


@dataclass
class Key:
    id: int
    prefix: str
    role: str
    name: str | None
    created_at: float
    revoked_at: float | None

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    @property
    def label(self) -> str:
        """How logs and rate limits name the key (never the secret)."""
        return f"{self.name or 'key'}#{self.prefix}"

    def to_dict(self) -> dict:
        return {"id": self.id, "prefix": self.prefix, "role": self.role, "name": self.name,
                "created_at": self.created_at, "revoked": self.revoked_at is not None}


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(store: ServiceStore, role: str, name: str | None = None) -> tuple[str, Key]:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of: {', '.join(ROLES)}")
    prefix = secrets.token_hex(PREFIX_LEN // 2)
    key = f"lk_{prefix}_{secrets.token_urlsafe(32)}"
    now = time.time()
    kid = store.change("INSERT INTO api_keys(prefix, hash, role, name, created_at) VALUES (?,?,?,?,?)",
                       (prefix, _hash(key), role, name, now))
    return key, Key(kid, prefix, role, name, now, None)


_COLS = "id, prefix, role, name, created_at, revoked_at"


def all_keys(store: ServiceStore) -> list[Key]:
    return [Key(*r) for r in store.execute(f"SELECT {_COLS} FROM api_keys ORDER BY id")]


def verify(store: ServiceStore, key: str) -> Key | None:
    """The live key for this secret, or None (unknown or revoked)."""
    rows = store.execute(f"SELECT {_COLS} FROM api_keys WHERE hash=? AND revoked_at IS NULL", (_hash(key),))
    return Key(*rows[0]) if rows else None


def revoke(store: ServiceStore, which: str) -> int:
    """Revoke by prefix (8 hex digits, which may all be decimal digits) or by id; returns how many keys
    were revoked."""
    col = "id" if which.isdigit() and len(which) != PREFIX_LEN else "prefix"
    return store.change(f"UPDATE api_keys SET revoked_at=? WHERE {col}=? AND revoked_at IS NULL", (time.time(), which))
