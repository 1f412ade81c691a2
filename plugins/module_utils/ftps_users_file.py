"""Desired-state logic of the ``ftps_users`` module: plan a users file from the inventory.

Standard library only (runs on the host inside the module). Hashing, verification and the
file format come from ``ftps_passwd`` (the daemon's own ``ftpsd.passwd``), never reimplemented.

Idempotence: a user whose password is unchanged keeps its stored hash (the password is
verified against it instead of being re-hashed with a fresh salt), so an unchanged inventory
rewrites nothing and reloads nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_passwd import (
    PERMS,
    SCHEMES,
    User,
    UsersFileError,
    dumps_users,
    hash_password,
    loads_users,
    parse_hash,
    validate_user_name,
    verify_password,
)

MASK = "********"
STATES = ("present", "absent")


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


def check_accounts(accounts: list[dict[str, Any]], variable: str = "users") -> list[str]:
    """Every problem with the wanted accounts, each a sentence naming ``variable[index]``."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, account in enumerate(accounts):
        where = f"{variable}[{index}]"
        if not isinstance(account, dict):
            problems.append(f"{where} must be a mapping")
            continue
        name = account.get("name")
        label = f"{where} (name {name!r})"
        reason = validate_user_name(name)
        if reason:
            problems.append(f"{label}: 'name' {reason}")
            continue
        if name in seen:
            problems.append(f"{label}: duplicate of {variable}[{seen[name]}]")
        seen.setdefault(name, index)
        state = account.get("state") or "present"
        if state not in STATES:
            problems.append(f"{label}: 'state' must be present or absent, got {state!r}")
        if state == "absent":
            continue
        problems.extend(_check_present(label, account))
    return problems


def _check_present(label: str, account: dict[str, Any]) -> list[str]:
    """Problems with an account that should exist."""
    problems: list[str] = []
    password, encoded = account.get("password"), account.get("hash")
    if password and encoded:
        problems.append(f"{label}: give 'password' or 'hash', not both")
    elif not password and not encoded:
        problems.append(f"{label}: 'password' (or a pre-computed 'hash') is empty or missing")
    elif encoded:
        try:
            parse_hash(encoded)
        except UsersFileError as exc:
            problems.append(f"{label}: 'hash' is not a usable hash ({exc})")
    home = account.get("home")
    if not isinstance(home, str) or not os.path.isabs(home):
        problems.append(f"{label}: 'home' must be an absolute path, got {home!r}")
    elif os.path.normpath(home) == "/" or ".." in home.split("/"):
        problems.append(f"{label}: 'home' must not be '/' or contain '..'")
    perm = account.get("perm") or "rw"
    if perm not in PERMS:
        problems.append(f"{label}: 'perm' must be one of {', '.join(PERMS)}, got {perm!r}")
    for key in ("max_rate", "max_connections"):
        value = account.get(key) or 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(f"{label}: '{key}' must be an integer >= 0 (0 = unlimited), got {value!r}")
    return problems


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
        if account.get("hash"):
            encoded = account["hash"]
        elif old is not None and verify_password(account["password"], old.hash):
            encoded = old.hash  # unchanged password: keep the stored hash (and its salt)
        else:
            encoded = hash_password(account["password"], scheme)
        new = User(
            name=name,
            hash=encoded,
            home=os.path.normpath(account["home"]),
            perm=account.get("perm") or "rw",
            max_rate=account.get("max_rate") or 0,
            max_connections=account.get("max_connections") or 0,
        )
        result[name] = new
        if old is None:
            plan.added.append(name)
        else:
            if old.hash != new.hash:
                plan.password_changed.append(name)
            if (old.home, old.perm, old.max_rate, old.max_connections) != (
                new.home,
                new.perm,
                new.max_rate,
                new.max_connections,
            ):
                plan.updated.append(name)
    if exclusive:
        plan.removed.extend(sorted(name for name in by_name if name not in listed))
    plan.users = sorted(result.values(), key=lambda user: user.name)
    return plan


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
        entry["hash"] = f"{MASK} (changed)" if user.name in changed_hashes else MASK
        entries.append(entry)
    return json.dumps({"version": 1, "users": entries}, indent=2) + "\n"
