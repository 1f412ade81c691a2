"""The daemon's TOML configuration (``/etc/ftpsd/ftpsd.toml``): schema, defaults, validation.

Two levels of checking:

* :func:`parse_config` checks the document alone (types, ranges, unknown keys, ports).
* :func:`ftpsd.load.check_config` also checks what the document points at: the certificate, key
  and chain (readable, key matches certificate, not expired) and the users file. It lives in
  :mod:`ftpsd.load`, above this module and :mod:`ftpsd.tls`, so neither imports the other back.

Both report every problem as one line; ``ftpsd check-config PATH`` prints them and exits 1.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields
from typing import Any

from ftpskit_common.layout import (
    CERT_NAME,
    CHAIN_NAME,
    KEY_NAME,
    RENEW_BEFORE_DAYS,
    current_path,
    renew_before_days_problem,
)
from ftpskit_common.passwd import USERS_FILE
from ftpskit_common.ports import PASSIVE_PORTS_DEFAULT, passive_ports_problem

LOG_LEVELS = ("debug", "info", "warning", "error")
TLS_VERSIONS = ("TLSv1.2", "TLSv1.3")
# Client certificates (docs/ftpsd.md, "Client certificates"): the field mapped to a user and
# what each listener asks of a client.
CLIENT_CERT_FIELDS = ("san_email", "san_uri", "cn")
CLIENT_CERT_MODES = ("off", "request", "require")


class ConfigError(ValueError):
    """One or more configuration problems; ``problems`` holds one line each.

    ``sections`` holds the sections of the document that validated (``{"tls": TLSConfig(...)}``),
    so that a check can go on to the files those sections name and report their problems too.
    """

    def __init__(self, problems: list[str], sections: dict[str, Any] | None = None) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.sections = sections or {}


@dataclass(frozen=True)
class ServerConfig:
    listen: tuple[str, ...] = ("0.0.0.0",)  # noqa: S104 - a server binds all addresses by default
    control_port: int = 21
    implicit_port: int = 990
    passive_ports: tuple[int, int] = PASSIVE_PORTS_DEFAULT  # ftpskit_common.ports, beside the rule
    masquerade_address: str = ""
    workers: int = 0
    banner: str = "ftpsd ready"
    max_connections: int = 512
    max_connections_per_ip: int = 20
    idle_timeout: int = 300
    data_timeout: int = 300
    login_timeout: int = 60
    login_failure_delay: float = 1.0
    ban_after_failures: int = 5
    ban_seconds: int = 600
    ipv6_prefix: int = 64
    max_passive_ports_per_user: int = 10
    allow_hard_links: bool = False
    runtime_dir: str = "/run/ftpsd"


@dataclass(frozen=True)
class TLSConfig:
    # where ftps_pki installs the served generation (ftpskit_common.layout, the one spelling)
    certfile: str = current_path(CERT_NAME)
    keyfile: str = current_path(KEY_NAME)
    chainfile: str = current_path(CHAIN_NAME)
    min_version: str = "TLSv1.2"
    tls13: bool = True
    ciphers: str = "ECDHE+AESGCM:ECDHE+CHACHA20"
    require_session_reuse: bool = True
    # The PKI's renewal window in days (ftps_pki_renew_before_days, written here by ftps_server):
    # `ftpsd metrics` and `ftpsd reload --metrics-out` report NotAfter minus this as the renewal due.
    renew_before_days: int = RENEW_BEFORE_DAYS
    client_ca_file: str = ""  # "" = client certificates off
    client_crl_file: str = ""  # required with client_ca_file; re-read on every reload
    client_cert_field: str = "san_email"
    client_cert_explicit: str = "request"
    client_cert_implicit: str = "request"


@dataclass(frozen=True)
class UsersConfig:
    file: str = USERS_FILE  # ftpskit_common.passwd, the one spelling


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"
    xferlog: str = "/var/log/ftpsd/xferlog"


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    tls: TLSConfig = field(default_factory=TLSConfig)
    users: UsersConfig = field(default_factory=UsersConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    path: str = ""


_SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "tls": TLSConfig,
    "users": UsersConfig,
    "logging": LoggingConfig,
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_port(value: Any) -> bool:
    return _is_int(value) and 1 <= value <= 65535


class _Checker:
    """Collects problems; each ``need`` adds one line when its condition is false."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def need(self, ok: bool, where: str, message: str) -> bool:
        if not ok:
            self.problems.append(f"{where}: {message}")
        return ok

    def path(self, out: dict[str, Any], s: dict[str, Any], where: str, default: str, off: str = "") -> None:
        """``where`` (``section.key``) must be an absolute path; with ``off`` (what "" means), or "".

        Valid values land in ``out[key]``.
        """
        key = where.split(".", 1)[1]
        value = s.get(key, default)
        ok = isinstance(value, str) and (os.path.isabs(value) or (bool(off) and value == ""))
        if self.need(
            ok, where, f'must be an absolute path or "" ({off})' if off else "must be an absolute path"
        ):
            out[key] = value


def _check_server(c: _Checker, s: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0912 - one branch per key
    out: dict[str, Any] = {}
    listen = s.get("listen", list(ServerConfig.listen))
    if c.need(
        isinstance(listen, list) and listen and all(isinstance(a, str) for a in listen),
        "server.listen",
        "must be a non-empty list of IP address strings",
    ):
        for addr in listen:
            try:
                ipaddress.ip_address(addr)
            except ValueError:
                c.need(False, "server.listen", f"{addr!r} is not an IP address")
        c.need(len(set(listen)) == len(listen), "server.listen", "lists an address twice")
        out["listen"] = tuple(listen)
    for key in ("control_port",):
        value = s.get(key, getattr(ServerConfig, key))
        if c.need(_is_port(value), f"server.{key}", f"must be a port 1-65535, got {value!r}"):
            out[key] = value
    implicit = s.get("implicit_port", ServerConfig.implicit_port)
    if c.need(
        implicit == 0 or _is_port(implicit),
        "server.implicit_port",
        f"must be a port 1-65535 or 0 (off), got {implicit!r}",
    ):
        out["implicit_port"] = implicit
    pasv = s.get("passive_ports", list(ServerConfig.passive_ports))
    problem = passive_ports_problem(pasv)  # the one rule, shared with the roles' preflights
    if c.need(not problem, "server.passive_ports", problem):
        out["passive_ports"] = (pasv[0], pasv[1])
    if "control_port" in out and "implicit_port" in out:
        c.need(
            out["control_port"] != out["implicit_port"],
            "server.implicit_port",
            f"equals control_port ({out['control_port']})",
        )
    if "passive_ports" in out:
        lo, hi = out["passive_ports"]
        for key in ("control_port", "implicit_port"):
            port = out.get(key)
            if port:
                c.need(
                    not lo <= port <= hi,
                    "server.passive_ports",
                    f"range {lo}-{hi} overlaps {key} {port}",
                )
    masq = s.get("masquerade_address", "")
    if c.need(isinstance(masq, str), "server.masquerade_address", "must be a string"):
        if masq:
            try:
                c.need(
                    ipaddress.ip_address(masq).version == 4,
                    "server.masquerade_address",
                    "must be an IPv4 address (PASV replies carry IPv4 only)",
                )
            except ValueError:
                c.need(False, "server.masquerade_address", f"{masq!r} is not an IP address")
        out["masquerade_address"] = masq
    banner = s.get("banner", ServerConfig.banner)
    if c.need(
        isinstance(banner, str) and "\n" not in banner and "\r" not in banner and len(banner) <= 200,
        "server.banner",
        "must be a single-line string of at most 200 characters",
    ):
        out["banner"] = banner
    c.path(out, s, "server.runtime_dir", ServerConfig.runtime_dir, off="off")
    ints = {
        "workers": (0, 256, "0 (one per core) to 256"),
        "max_connections": (1, 1_000_000, "1 or more"),
        "max_connections_per_ip": (0, 1_000_000, "0 (unlimited) or more"),
        "idle_timeout": (1, 86_400, "1-86400 seconds"),
        "data_timeout": (1, 86_400, "1-86400 seconds"),
        "login_timeout": (1, 3_600, "1-3600 seconds"),
        "ban_after_failures": (0, 1_000_000, "0 (off) or more"),
        "ban_seconds": (0, 31_536_000, "0-31536000 seconds"),
        "ipv6_prefix": (1, 128, "1-128 (prefix length)"),
        "max_passive_ports_per_user": (0, 65_535, "0 (no cap) or more"),
    }
    for key, (lo, hi, what) in ints.items():
        value = s.get(key, getattr(ServerConfig, key))
        if c.need(
            _is_int(value) and lo <= value <= hi, f"server.{key}", f"must be an integer {what}, got {value!r}"
        ):
            out[key] = value
    hard_links = s.get("allow_hard_links", ServerConfig.allow_hard_links)
    if c.need(
        isinstance(hard_links, bool), "server.allow_hard_links", f"must be true or false, got {hard_links!r}"
    ):
        out["allow_hard_links"] = hard_links
    delay = s.get("login_failure_delay", ServerConfig.login_failure_delay)
    if c.need(
        isinstance(delay, int | float) and not isinstance(delay, bool) and 0 <= delay <= 60,
        "server.login_failure_delay",
        f"must be a number of seconds 0-60, got {delay!r}",
    ):
        out["login_failure_delay"] = float(delay)
    if out.get("max_connections") and out.get("max_connections_per_ip"):
        c.need(
            out["max_connections_per_ip"] <= out["max_connections"],
            "server.max_connections_per_ip",
            f"exceeds max_connections ({out['max_connections']})",
        )
    return out


def _check_tls(c: _Checker, s: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    c.path(out, s, "tls.certfile", TLSConfig.certfile)
    c.path(out, s, "tls.keyfile", TLSConfig.keyfile)
    c.path(out, s, "tls.chainfile", TLSConfig.chainfile, off="no chain")
    minv = s.get("min_version", TLSConfig.min_version)
    if c.need(
        minv in TLS_VERSIONS, "tls.min_version", f"must be one of {', '.join(TLS_VERSIONS)}, got {minv!r}"
    ):
        out["min_version"] = minv
    for key in ("tls13", "require_session_reuse"):
        value = s.get(key, getattr(TLSConfig, key))
        if c.need(isinstance(value, bool), f"tls.{key}", f"must be true or false, got {value!r}"):
            out[key] = value
    if out.get("min_version") == "TLSv1.3" and out.get("tls13") is False:
        c.need(False, "tls.tls13", "is false but min_version is TLSv1.3: no protocol version left")
    renew = s.get("renew_before_days", TLSConfig.renew_before_days)
    if c.need(
        not renew_before_days_problem(renew), "tls.renew_before_days", renew_before_days_problem(renew)
    ):
        out["renew_before_days"] = renew
    c.path(out, s, "tls.client_ca_file", TLSConfig.client_ca_file, off="client certificates off")
    c.path(out, s, "tls.client_crl_file", TLSConfig.client_crl_file, off="only without client_ca_file")
    if out.get("client_ca_file") and "client_crl_file" in out:
        c.need(
            out["client_crl_file"] != "",
            "tls.client_crl_file",
            "is required when client_ca_file is set (revocation is always checked)",
        )
    for key, choices in (
        ("client_cert_field", CLIENT_CERT_FIELDS),
        ("client_cert_explicit", CLIENT_CERT_MODES),
        ("client_cert_implicit", CLIENT_CERT_MODES),
    ):
        value = s.get(key, getattr(TLSConfig, key))
        if c.need(value in choices, f"tls.{key}", f"must be one of {', '.join(choices)}, got {value!r}"):
            out[key] = value
    ciphers = s.get("ciphers", TLSConfig.ciphers)
    if c.need(
        isinstance(ciphers, str) and ciphers.strip() != "", "tls.ciphers", "must be a non-empty string"
    ):
        from OpenSSL import SSL

        try:
            SSL.Context(SSL.TLS_SERVER_METHOD).set_cipher_list(ciphers.encode("ascii"))
        except (SSL.Error, UnicodeEncodeError):
            c.need(False, "tls.ciphers", f"OpenSSL accepts no cipher from {ciphers!r}")
        else:
            out["ciphers"] = ciphers
    return out


def _check_users(c: _Checker, s: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    c.path(out, s, "users.file", UsersConfig.file)
    return out


def _check_logging(c: _Checker, s: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    level = s.get("level", LoggingConfig.level)
    if c.need(level in LOG_LEVELS, "logging.level", f"must be one of {', '.join(LOG_LEVELS)}, got {level!r}"):
        out["level"] = level
    c.path(out, s, "logging.xferlog", LoggingConfig.xferlog, off="off")
    return out


_SECTION_CHECKS = {
    "server": _check_server,
    "tls": _check_tls,
    "users": _check_users,
    "logging": _check_logging,
}


def parse_config(data: dict[str, Any], path: str = "") -> Config:
    """Validate a parsed TOML document; returns a Config or raises ConfigError (all problems)."""
    c = _Checker()
    for key in sorted(set(data) - set(_SECTIONS)):
        c.need(False, key, "unknown section" if isinstance(data[key], dict) else "unknown key")
    sections: dict[str, Any] = {}
    valid: dict[str, Any] = {}  # the sections without a problem, for ConfigError.sections
    for name, cls in _SECTIONS.items():
        raw = data.get(name, {})
        if not c.need(isinstance(raw, dict), name, "must be a table"):
            continue
        before = len(c.problems)
        known = {f.name for f in fields(cls)}
        for key in sorted(set(raw) - known):
            c.need(False, f"{name}.{key}", "unknown key")
        values = _SECTION_CHECKS[name](c, raw)
        sections[name] = values
        if len(c.problems) == before:
            valid[name] = cls(**values)
    if c.problems:
        raise ConfigError(c.problems, valid)
    return Config(
        server=ServerConfig(**sections["server"]),
        tls=TLSConfig(**sections["tls"]),
        users=UsersConfig(**sections["users"]),
        logging=LoggingConfig(**sections["logging"]),
        path=path,
    )


def load_config(path: str) -> Config:
    """Read and validate the TOML file (document level only)."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_config(data, path=path)


def peek_runtime_dir(path: str) -> str:
    """``server.runtime_dir`` of a configuration file, whatever else is wrong with it.

    ``ftpsd reload`` needs it to find the running daemon's status even when the file it asks the
    daemon to load is broken (the daemon then reports the problems). Unreadable → the default.
    """
    try:
        with open(path, "rb") as handle:
            value = tomllib.load(handle).get("server", {}).get("runtime_dir", ServerConfig.runtime_dir)
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        return ServerConfig.runtime_dir
    return value if isinstance(value, str) else ServerConfig.runtime_dir


def peek_tls(path: str) -> TLSConfig:
    """``tls.certfile``/``keyfile``/``chainfile`` and ``renew_before_days`` of a configuration file
    (defaults where absent, unreadable or not of their type): ``ftpsd status`` and ``ftpsd metrics``
    compare the deployed certificate with the one served even when the rest of the file would not
    validate."""
    try:
        with open(path, "rb") as handle:
            tls = tomllib.load(handle).get("tls", {})
    except (OSError, tomllib.TOMLDecodeError):
        return TLSConfig()
    if not isinstance(tls, dict):
        return TLSConfig()
    keys = ("certfile", "keyfile", "chainfile")
    found: dict[str, Any] = {k: tls[k] for k in keys if isinstance(tls.get(k), str)}
    renew = tls.get("renew_before_days")
    if _is_int(renew) and renew >= 0:
        found["renew_before_days"] = renew
    return TLSConfig(**found)
