"""Desired-state logic of the ``ftps_users`` module: plan a users file from the inventory.

Standard library only (runs on the host inside the module). Hashing, verification and the
file format come from ``ftpskit_common.passwd`` (the daemon's own), and the wanted accounts are
checked by ``ftpskit_common.accounts`` (the one set of account rules), never reimplemented.

Idempotence: a user whose password is unchanged keeps its stored hash (the password is
verified against it instead of being re-hashed with a fresh salt), so an unchanged inventory
rewrites nothing and reloads nothing. One scheme per file: a stored hash of another scheme than
``scheme``, or weaker than its defaults (:func:`needs_rehash`), is re-hashed from the password,
so changing ``ftps_users_hash_scheme`` converts every user the inventory gives a password for
(a pre-computed ``hash`` is written as given).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.passwd import (
    SCHEMES,
    User,
    UsersFileError,
    dumps_users,
    hash_password,
    loads_users,
    needs_rehash,
    verify_password,
)

MASK = "********"


@dataclass
class Plan:
    """What applying the wanted accounts to the current file does."""

    users: list[User]
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    password_changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.password_changed or self.removed)


def plan_users(
    current: list[User], accounts: list[dict[str, Any]], *, exclusive: bool = False, scheme: str = "scrypt"
) -> Plan:
    """The users file after applying ``accounts`` (already checked) to ``current``."""
    if scheme not in SCHEMES:
        raise UsersFileError(f"hash scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    by_name = {user.name: user for user in current}
    result: dict[str, User] = {} if exclusive else dict(by_name)
    plan = Plan(users=[])
    listed = set()
    for account in accounts:
        name = account["name"]
        listed.add(name)
        old = by_name.get(name)
        if (account.get("state") or "present") == "absent":
            result.pop(name, None)
            if old is not None:
                plan.removed.append(name)
            continue
        encoded = _encoded(account, old, scheme)
        new = User(
            name=name,
            hash=encoded,
            home=os.path.normpath(account["home"]),
            perm=account.get("perm") or "rw",
            max_rate=account.get("max_rate") or 0,
            max_connections=account.get("max_connections") or 0,
            auth=account.get("auth") or "password",
            certificate_identity=account.get("certificate_identity") or "",
        )
        result[name] = new
        if old is None:
            plan.added.append(name)
        else:
            if old.hash != new.hash:
                plan.password_changed.append(name)
            if (
                old.home,
                old.perm,
                old.max_rate,
                old.max_connections,
                old.auth,
                old.certificate_identity,
            ) != (
                new.home,
                new.perm,
                new.max_rate,
                new.max_connections,
                new.auth,
                new.certificate_identity,
            ):
                plan.updated.append(name)
    if exclusive:
        plan.removed.extend(sorted(name for name in by_name if name not in listed))
    plan.users = sorted(result.values(), key=lambda user: user.name)
    return plan


def _encoded(account: dict[str, Any], old: User | None, scheme: str) -> str:
    """The hash to store for ``account`` (checked), given its current entry ``old``."""
    if account.get("hash"):
        return account["hash"]
    if not account.get("password"):
        return ""  # an auth = certificate account without a password
    if (
        old is not None
        and old.hash
        and not needs_rehash(old.hash, scheme)
        and verify_password(account["password"], old.hash)
    ):
        return old.hash  # unchanged password: keep the stored hash (and its salt)
    return hash_password(account["password"], scheme)


def parse_current(text: str | None) -> list[User]:
    """Users of the existing file; ``None`` (no file) is an empty list."""
    if text is None:
        return []
    return loads_users(text)


def render(users: list[User]) -> str:
    """The users file's canonical text."""
    return dumps_users(users)


def masked(users: list[User], changed_hashes: list[str] | None = None) -> str:
    """The users file as JSON for a diff, with every hash masked (a changed one says so)."""
    changed_hashes = changed_hashes or []
    entries = []
    for user in users:
        entry = user.to_dict()
        if user.hash:
            entry["hash"] = f"{MASK} (changed)" if user.name in changed_hashes else MASK
        entries.append(entry)
    return json.dumps({"version": 1, "users": entries}, indent=2) + "\n"
