"""Read everything the daemon serves from, once, and validate what was read.

``ftpsd check-config``, the daemon's start and every reload use :func:`load_all`: the TOML
document (:mod:`ftpsd.config`), the TLS material and its SSL context (:mod:`ftpsd.tls`) and the
users file (:mod:`ftpskit_common.passwd`), each file read exactly once; the objects that were
checked are the objects that get served, so a file replaced between a check and a second read
can never slip in. This module sits above ``config`` and ``tls`` (``tls`` imports ``config``,
nothing imports back), so the package has no import cycle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ftpsd.clientcert import ClientTrust, ClientTrustError, load_client_trust
from ftpsd.config import Config, ConfigError, LoggingConfig, TLSConfig, UsersConfig, load_config
from ftpsd.tls import ContextFactory, TLSMaterial, TLSMaterialError, load_material
from ftpskit_common.passwd import User, UsersFileError, load_users


@dataclass(frozen=True)
class Everything:
    """What one load read and checked."""

    config: Config
    material: TLSMaterial
    context: ContextFactory  # builds one SSL context per control connection
    users: tuple[User, ...]


def _load(path: str) -> tuple[Config | None, Everything | None, list[str]]:
    """Everything, or every problem found: a document with problems still has the files its
    valid sections name checked, so that one run reports all there is to fix."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        found = exc.sections
        files = _read_files(found.get("tls"), found.get("users"), found.get("logging"))
        return None, None, exc.problems + files[-1]
    material, context, users, problems = _read_files(config.tls, config.users, config.logging)
    if problems or material is None or context is None or users is None:
        return config, None, problems
    return config, Everything(config=config, material=material, context=context, users=tuple(users)), []


def _read_files(
    tls: TLSConfig | None, users_config: UsersConfig | None, logging: LoggingConfig | None
) -> tuple[TLSMaterial | None, ContextFactory | None, list[User] | None, list[str]]:
    """The TLS material and context, the users and the xferlog directory of the sections given
    (None: a section with problems of its own, not checked further)."""
    problems: list[str] = []
    material = context = users = None
    if tls is not None:
        try:
            material = load_material(tls)
        except TLSMaterialError as exc:
            problems.extend(exc.problems)
        client: ClientTrust | None = None
        try:
            client = load_client_trust(tls)
        except ClientTrustError as exc:
            problems.extend(exc.problems)
        if material is not None and not problems:
            try:
                context = ContextFactory(tls, material, client)
            except TLSMaterialError as exc:
                problems.extend(exc.problems)
    if users_config is not None:
        if not os.path.exists(users_config.file):
            problems.append(f"users.file: {users_config.file} does not exist")
        else:
            try:
                users = load_users(users_config.file)
            except UsersFileError as exc:
                problems.extend(f"users.file: {line}" for line in exc.problems)
    if logging is not None and logging.xferlog:
        directory = os.path.dirname(logging.xferlog)
        if not os.path.isdir(directory):
            problems.append(f"logging.xferlog: directory {directory} does not exist")
    return material, context, users, problems


def load_all(path: str) -> Everything:
    """The configuration, the TLS material and context and the users, each read once and checked.

    Raises :class:`ftpsd.config.ConfigError` listing every problem (one line each).
    """
    _config, everything, problems = _load(path)
    if everything is None:
        raise ConfigError(problems)
    return everything


def check_config(path: str) -> tuple[Config | None, list[str]]:
    """Full check: the document, the TLS material and the users file. Returns (config, problems)."""
    config, _everything, problems = _load(path)
    return config, problems
