"""The inventory's accounts checked with the one set of account rules (standard library only).

The rules themselves (user names, homes, permissions, limits, hashes) live in :mod:`.passwd`, the
daemon's users-file code; this module applies them to the accounts a playbook wants
(``ftps_users_accounts``), which also carry ``state`` and a ``password`` or a ``hash``. The
``ftpskit.ftps.ftps_users`` module checks with it on the host, and the role's preflight (and so
``site.yml``'s) through the controller-side filter ``ftpskit.ftps.ftps_users_problems``: one
definition, so the preflight, the module and the daemon can never disagree about a name.
Messages name the variable and the index, never a password or a hash.
"""

from __future__ import annotations

from typing import Any

from .passwd import (
    UsersFileError,
    check_auth,
    duplicate_names,
    parse_hash,
    validate_home,
    validate_limit,
    validate_password,
    validate_perm,
    validate_user_name,
)

STATES = ("present", "absent")


def check_accounts(accounts: Any, variable: str = "users", home_root: str | None = None) -> list[str]:
    """Every problem with the wanted accounts, each a sentence naming ``variable[index]``.

    ``home_root``: an account without ``home`` gets ``<home_root>/<name>`` (the role's default);
    without it, ``home`` is required.
    """
    if not isinstance(accounts, list):
        return [f"{variable} must be a list of accounts"]
    problems: list[str] = []
    names: list[tuple[str, str, str]] = []  # (label, name, where) of every account
    present: list[tuple[str, str]] = []  # (label, certificate_identity) of accounts to exist
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
        names.append((label, name, where))
        state = account.get("state") or "present"
        if state not in STATES:
            problems.append(f"{label}: 'state' must be present or absent, got {state!r}")
        if state == "absent":
            continue
        wanted = account
        if home_root is not None and not account.get("home"):
            wanted = {**account, "home": f"{home_root.rstrip('/')}/{name}"}
        problems.extend(_check_present(label, wanted))
        present.append((label, account.get("certificate_identity") or ""))
    # The daemon's own rule for names in a file (passwd.validate_users), so they never disagree.
    problems.extend(duplicate_names(names))
    owner: dict[str, str] = {}
    for label, identity in present:
        if identity and identity in owner:
            problems.append(f"{label}: 'certificate_identity' {identity!r} is also {owner[identity]}'s")
        if identity:
            owner.setdefault(identity, label)
    return problems


def _check_present(label: str, account: dict[str, Any]) -> list[str]:
    """Problems with an account that should exist."""
    problems: list[str] = []
    password, encoded = account.get("password"), account.get("hash")
    auth = account.get("auth") or "password"
    problems.extend(
        f"{label}: {line}"
        for line in check_auth(
            auth,
            account.get("certificate_identity"),
            bool(password or encoded),
            "'password' (or a pre-computed 'hash') is empty or missing",
        )
    )
    if password and encoded:
        problems.append(f"{label}: give 'password' or 'hash', not both")
    elif password:
        reason = validate_password(password)
        if reason:
            problems.append(f"{label}: 'password' {reason}")
    elif encoded:
        try:
            parse_hash(encoded)
        except UsersFileError as exc:
            problems.append(f"{label}: 'hash' is not a usable hash ({exc})")
    home = account.get("home")
    reason = validate_home(home)
    if reason:
        problems.append(f"{label}: 'home' {reason}, got {home!r}")
    reason = validate_perm(account.get("perm") or "rw")
    if reason:
        problems.append(f"{label}: 'perm' {reason}")
    for key in ("max_rate", "max_connections"):
        value = account.get(key) or 0
        reason = validate_limit(value)
        if reason:
            problems.append(f"{label}: '{key}' {reason}, got {value!r}")
    return problems
