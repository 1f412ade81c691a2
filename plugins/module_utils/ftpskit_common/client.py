"""FTPS client logic shared by the probe module, ``ftps-trust``, the tests and the benchmark.

Standard library only, part of the shared package ``ftpskit_common`` (the collection's
``plugins/module_utils/ftpskit_common/``, also the ``ftpskit-common`` wheel), so it runs on any
host with a Python 3.11+ and nothing else installed.

Three parts (certificates are read by :mod:`.x509`):

- :class:`FTPSClient`: ``ftplib.FTP_TLS`` never reuses the control connection's TLS session on
  data connections, so servers that require reuse (vsftpd's ``require_ssl_reuse``, ftpsd's
  default) refuse it. This class passes the control session when wrapping each data socket and
  supports implicit FTPS (TLS from the first byte, port 990).
- :func:`probe`: connect, verify (system store or a CA file, hostname), compare with pins,
  optionally prove a data connection on a reused session and a round trip. Every failure is a
  :class:`ProbeError` with a ``kind`` and a sentence a person can act on.
- :class:`PinStore`: the ``known_servers.json`` file that remembers accepted certificates
  (``host:port`` -> SHA-256 fingerprint and SPKI pin), written atomically. Fingerprints are
  kept in :func:`.x509.sha256_fingerprint`'s format; files written with the old upper-case,
  colon-separated spelling are read and rewritten in it.
"""

from __future__ import annotations

import binascii
import contextlib
import datetime as _dt
import ftplib
import hashlib
import io
import ipaddress
import json
import os
import re
import socket
import ssl
import time
from typing import Any

from .atomicfile import atomic_write
from .x509 import (
    CertificateParseError,
    der_to_pem,
    describe_key,
    normalize_fingerprint,
    normalize_spki,
    parse_certificate,
    printable,
    sha256_fingerprint,
)

# ---------------------------------------------------------------------------------------------
# The session-reusing FTPS client
# ---------------------------------------------------------------------------------------------


class _DataSSLSocket(ssl.SSLSocket):
    """A data connection whose TLS shutdown tolerates OpenSSL's SHUTDOWN_WHILE_IN_INIT.

    A TLS 1.3 server may write a data connection's bytes and close it before it has the client's
    Finished (0.5-RTT; stock pyftpdlib does). On an empty listing OpenSSL then still counts the
    client as "in init" and refuses ``SSL_shutdown``. The transfer itself is complete by then,
    and the server's reply on the control connection (226, or an error) stays its judge.
    """

    def unwrap(self) -> socket.socket | None:
        try:
            return super().unwrap()
        except ssl.SSLError as exc:
            if exc.reason != "SHUTDOWN_WHILE_IN_INIT":
                raise
            return None


# Seconds an explicit connection waits for the 220 greeting before it checks whether the port
# is an implicit FTPS one (silent until the client's TLS ClientHello). An FTP server greets at once.
GREETING_PATIENCE = 3.0


class ImplicitPortError(Exception):
    """An explicit connection met a port that answers TLS from the first byte (implicit FTPS)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"{server_label(host, port)} speaks TLS from the first byte")


class NoGreetingError(TimeoutError):
    """The server accepted the connection but sent no FTP greeting within the timeout."""

    def __init__(self, timeout: float | None) -> None:
        super().__init__(f"no FTP greeting within {timeout:g} s" if timeout else "no FTP greeting")
        self.timeout = timeout


# The longest reply (all lines of a multi-line reply) the client reads: ftplib joins continuation
# lines without a bound (and with quadratic copying), so a hostile server could send "220-" lines
# until the client's memory runs out. A greeting, a FEAT or a STAT of a directory is far shorter.
MAX_REPLY_BYTES = 1024 * 1024

# A resolver that answers "temporary failure" (EAI_AGAIN: no answer from the DNS, e.g. one that is
# reloading) is asked again, at most this many times in all, this many seconds apart; any other
# failure (a name that does not exist, a refused or silent port) is raised at once.
RESOLVE_ATTEMPTS = 3
RESOLVE_PAUSE = 1.0


def open_tcp(address: tuple[str, int], timeout: float | None, source_address: Any = None) -> socket.socket:
    """:func:`socket.create_connection`, asking the resolver again while it answers EAI_AGAIN
    (bounded: :data:`RESOLVE_ATTEMPTS`, :data:`RESOLVE_PAUSE`): a probe or a health gate does not
    fail on a DNS that is briefly not answering, and never waits on one that says no."""
    for _attempt in range(RESOLVE_ATTEMPTS - 1):
        try:
            return socket.create_connection(address, timeout, source_address=source_address)
        except socket.gaierror as exc:
            if exc.errno != socket.EAI_AGAIN:
                raise
            time.sleep(RESOLVE_PAUSE)
    return socket.create_connection(address, timeout, source_address=source_address)


def speaks_tls(host: str, port: int, timeout: float, source_address: Any = None) -> bool:
    """Whether ``host:port`` answers a TLS ClientHello in TLS (a completed handshake or a TLS
    alert), on a connection of its own; False for plaintext, silence or a closed port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with open_tcp((host, port), timeout, source_address) as raw:
            raw.settimeout(timeout)
            with context.wrap_socket(raw):
                return True
    except ssl.SSLError as exc:
        # The server's alert (e.g. no shared protocol version) is TLS too; plaintext is not.
        return "ALERT" in str(exc).upper()
    except (OSError, ValueError):
        return False


def _readable(raw: socket.socket, wait: float | None, then: float | None) -> bool:
    """Whether ``raw`` has data (or EOF) within ``wait`` seconds; nothing is consumed (a peek, not
    select(): any descriptor number works). The socket's timeout is ``then`` afterwards."""
    raw.settimeout(wait)
    try:
        raw.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        return False
    finally:
        raw.settimeout(then)
    return True


class _ReplyIO(socket.SocketIO):
    """The control connection's reader: each receive waits at most until the reply's deadline
    (:attr:`FTPSClient._reply_deadline`), so a server that trickles a reply a byte at a time
    cannot hold the client longer than its timeout (a socket's timeout is per receive)."""

    def __init__(self, sock: socket.socket, client: FTPSClient) -> None:
        super().__init__(sock, "rb")
        self._client = client

    def readinto(self, b: Any) -> int | None:
        deadline = self._client._reply_deadline
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete reply within {self._client.timeout:g} s")
            self._sock.settimeout(min(left, self._client.timeout or left))
        return super().readinto(b)


class FTPSClient(ftplib.FTP_TLS):
    """An FTP_TLS that reuses the control connection's TLS session on every data connection.

    ``implicit=True`` speaks TLS from the first byte (implicit FTPS) instead of AUTH TLS.
    ``server_hostname`` is the name the certificate is checked against (and sent as SNI) when it
    differs from the address connected to.
    """

    def __init__(
        self,
        host: str = "",
        port: int = 0,
        *,
        context: ssl.SSLContext | None = None,
        implicit: bool = False,
        timeout: float = 30.0,
        reuse_session: bool = True,
        server_hostname: str | None = None,
    ) -> None:
        self.implicit = implicit
        self.reuse_session = reuse_session
        self.server_hostname = server_hostname
        self.data_sessions_reused: list[bool] = []
        self.last_data_setup: tuple[float, float] = (0.0, 0.0)
        self._reply_deadline: float | None = None
        super().__init__(context=context or ssl.create_default_context(), timeout=timeout)
        if host:
            self.connect(host, port or (990 if implicit else 21))

    @property
    def tls_name(self) -> str:
        """The name sent as SNI and checked against the certificate."""
        return self.server_hostname or self.host

    # -- connection ---------------------------------------------------------------------
    def connect(
        self, host: str = "", port: int = 0, timeout: float = -999, source_address: Any = None
    ) -> str:
        """As ftplib's, plus: implicit FTPS speaks TLS first; explicit FTPS waits for the greeting
        at most :data:`GREETING_PATIENCE` before checking whether the port is an implicit one
        (which stays silent until it hears a ClientHello) instead of waiting out the timeout."""
        if host:
            self.host = host
        if port > 0:
            self.port = port
        if timeout != -999:
            self.timeout = timeout
        if source_address is not None:
            self.source_address = source_address
        raw = open_tcp((self.host, self.port), self.timeout, self.source_address)
        try:
            if self.implicit:
                self.sock = self.context.wrap_socket(raw, server_hostname=self.tls_name)
            else:
                self._await_greeting(raw)
                self.sock = raw
        except BaseException:
            raw.close()
            raise
        self.af = self.sock.family
        self.file = self._reply_file()
        self.welcome = self.getresp()
        return self.welcome

    def _await_greeting(self, raw: socket.socket) -> None:
        """Return once the server has sent something; raise :class:`ImplicitPortError` when it
        stays silent but answers a TLS handshake, :class:`NoGreetingError` after the timeout."""
        patience = GREETING_PATIENCE if self.timeout is None else min(self.timeout, GREETING_PATIENCE)
        if _readable(raw, patience, self.timeout):
            return
        if speaks_tls(self.host, self.port, patience, self.source_address):
            raise ImplicitPortError(self.host, self.port)
        rest = None if self.timeout is None else max(self.timeout - patience, 0.001)
        if not _readable(raw, rest, self.timeout):
            raise NoGreetingError(self.timeout)

    def _reply_file(self) -> io.TextIOWrapper:
        """What ``sock.makefile("r", encoding=...)`` makes, over :class:`_ReplyIO`."""
        self.sock._io_refs += 1  # as makefile() does: the socket stays open while the file is
        text = io.TextIOWrapper(io.BufferedReader(_ReplyIO(self.sock, self)), self.encoding)
        text.mode = "r"
        return text

    def getmultiline(self) -> str:
        """One reply, read within the client's timeout in all (see :meth:`_read_reply`)."""
        if self.timeout is None or self._reply_deadline is not None:
            return self._read_reply()
        self._reply_deadline = time.monotonic() + self.timeout
        try:
            return self._read_reply()
        finally:
            self._reply_deadline = None
            with contextlib.suppress(OSError):
                self.sock.settimeout(self.timeout)

    def _read_reply(self) -> str:
        """As ftplib's (a reply's lines joined by ``\\n``), at most :data:`MAX_REPLY_BYTES` long:
        a longer one is ``ftplib.error_proto``, not a client that reads until its memory is gone."""
        line = self.getline()
        if line[3:4] != "-":
            return line
        code, lines, size = line[:3], [line], len(line)
        while True:
            nextline = self.getline()
            lines.append(nextline)
            size += len(nextline) + 1
            if size > MAX_REPLY_BYTES:
                raise ftplib.error_proto(  # noqa: S321 - an exception class, no FTP call
                    f"the server's {code} reply is longer than {MAX_REPLY_BYTES} bytes; not read further"
                )
            if nextline[:3] == code and nextline[3:4] != "-":
                return "\n".join(lines)

    def auth(self) -> str:
        """AUTH TLS, checking the certificate against :attr:`tls_name` (ftplib uses ``host``)."""
        if isinstance(self.sock, ssl.SSLSocket):
            raise ValueError("Already using TLS")
        resp = self.voidcmd("AUTH TLS")
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.tls_name)
        self.file = self._reply_file()
        return resp

    def login(self, user: str = "", passwd: str = "", acct: str = "", secure: bool = True) -> str:
        if self.implicit:
            # Already encrypted: skip AUTH TLS, which an implicit server answers with an error.
            return ftplib.FTP.login(self, user, passwd, acct)  # noqa: S321 - the socket is TLS already
        return super().login(user, passwd, acct, secure)

    # -- data connections -----------------------------------------------------------------
    def ntransfercmd(self, cmd: str, rest: Any = None) -> tuple[socket.socket, int | None]:
        start = time.perf_counter()
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)  # noqa: S321 - wrapped in TLS below
        opened = time.perf_counter()
        if self._prot_p:
            session = self.sock.session if self.reuse_session else None
            try:
                conn = self.context.wrap_socket(conn, server_hostname=self.tls_name, session=session)
            except BaseException:
                conn.close()
                raise
            conn.__class__ = _DataSSLSocket
            self.data_sessions_reused.append(bool(conn.session_reused))
        # (PASV/EPSV + connect + command until its 1xx reply, TLS handshake), in seconds.
        self.last_data_setup = (opened - start, time.perf_counter() - opened)
        return conn, size

    # -- facts --------------------------------------------------------------------------
    def peer_certificate(self) -> bytes | None:
        """The DER of the certificate the server presented (verified or not)."""
        if not isinstance(self.sock, ssl.SSLSocket):
            return None
        return self.sock.getpeercert(binary_form=True)

    def peer_chain(self) -> tuple[list[bytes], bool]:
        """The chain the server sent as DER, and whether it is complete.

        Python 3.13+ has ``get_unverified_chain()``; before, only the leaf can be had.
        """
        if not isinstance(self.sock, ssl.SSLSocket):
            return [], False
        getter = getattr(self.sock, "get_unverified_chain", None)
        if getter is not None:
            chain = getter() or []
            return [bytes(c) for c in chain], True
        leaf = self.peer_certificate()
        return ([leaf] if leaf else []), False

    def tls_facts(self) -> dict[str, Any]:
        """TLS version and cipher of the control connection."""
        sock = self.sock
        if not isinstance(sock, ssl.SSLSocket):
            return {"tls": False}
        cipher = sock.cipher()
        return {
            "tls": True,
            "version": sock.version(),
            "cipher": cipher[0] if cipher else None,
            "data_session_reused": all(self.data_sessions_reused) if self.data_sessions_reused else None,
        }


# ---------------------------------------------------------------------------------------------
# Pins
# ---------------------------------------------------------------------------------------------


# A host name as a pin key: LDH labels (underscore tolerated, as resolvers do), 1..63 each.
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def canonical_host(host: str) -> str:
    """The one spelling of a server's host, so one server has one pin key however it is written.

    An IP address in its compressed form (``0:0::1`` and ``[::1]`` are ``::1``, hex in lower
    case); a name in lower case, without the root's trailing dot, internationalized labels as
    their A-labels (``bücher.example`` is ``xn--bcher-kva.example``). ValueError with a sentence
    for anything else (blanks, controls, ``/``, an empty label, more than 253 characters): such a
    string names no server and must never become or find a pin.
    """
    text = str(host).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        pass
    name = text.lower()
    name = name[:-1] if name.endswith(".") else name
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError as exc:
        raise ValueError(f"{printable(host)!r} is not a host name or an IP address ({exc})") from None
    if not name or len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        raise ValueError(f"{printable(host)!r} is not a host name or an IP address")
    last = name.rsplit(".", 1)[-1]
    if last.isdigit() or last.startswith("0x"):
        # No top-level domain is numeric (RFC 3696 2): "127.1", "2130706433" or "0x7f.1" is an
        # IPv4 address in the resolver's shorthand (inet_aton), one server with 127.0.0.1.
        try:
            return str(ipaddress.IPv4Address(socket.inet_aton(name)))
        except OSError:
            raise ValueError(f"{printable(host)!r} is not a host name or an IP address") from None
    return name


def server_key(host: str, port: int) -> str:
    """The pin store's key for a server: ``host:port`` with :func:`canonical_host`'s host, an
    IPv6 address in brackets (``[::1]:21``). ValueError for a host or port that names no server."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port {port!r} is not 1..65535")
    host = canonical_host(host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def server_label(host: str, port: int) -> str:
    """``host:port`` for a message: :func:`server_key`'s spelling, or for a host or port that
    names no server (a message about it must not fail) the text as given, made printable."""
    try:
        return server_key(host, port)
    except ValueError:
        text, port_text = printable(str(host).strip()), printable(str(port))
        return f"[{text.strip('[]')}]:{port_text}" if ":" in text else f"{text}:{port_text}"


def parse_server_key(key: str) -> str:
    """A key as some file spells it (``FTP1.Example.:21``, ``[2001:DB8:0::5]:21``) in the one
    spelling of :func:`server_key`; ValueError for a key that is not ``host:port``."""
    host, sep, port = str(key).rpartition(":")
    if not sep or not port.isdigit() or (":" in host and not host.startswith("[")):
        raise ValueError(f"{printable(key)!r} is not host:port ([address]:port for IPv6)")
    return server_key(host, int(port))


def compare_pin(fields: dict[str, Any], pin: dict[str, Any]) -> list[str]:
    """What differs between a certificate's fields and a pin: [] when the pin matches.

    A pin may hold ``fingerprint_sha256`` (the exact certificate), ``spki_sha256`` (the key,
    which survives renewal with the same key), or both; each one given must match.

    ``next_spki_sha256`` (a list, or one pin) names keys the fleet made ahead of time for its
    next rotation (RFC 7671 8.1, "current + next"): a certificate whose key is one of them
    matches on its own, since its certificate did not exist when the pin was written. Any other
    certificate must match the current pin as above, so a key the fleet never announced fails.
    """
    mismatches = []
    if not pin.get("fingerprint_sha256") and not pin.get("spki_sha256"):
        raise ValueError("a pin needs fingerprint_sha256 or spki_sha256")
    if fields.get("spki_sha256") and fields["spki_sha256"] in next_spki_pins(pin):
        return []
    if pin.get("fingerprint_sha256") and normalize_fingerprint(
        pin["fingerprint_sha256"]
    ) != normalize_fingerprint(fields["fingerprint_sha256"]):
        mismatches.append(
            f"SHA-256 fingerprint is {fields['fingerprint_sha256']}, pinned {pin['fingerprint_sha256']}"
        )
    if pin.get("spki_sha256") and normalize_spki(pin["spki_sha256"]) != fields.get("spki_sha256"):
        mismatches.append(f"SPKI pin is {fields.get('spki_sha256', 'unknown')}, pinned {pin['spki_sha256']}")
    if mismatches and pin.get("next_spki_sha256"):
        mismatches.append(f"nor is it an announced next key ({', '.join(next_spki_pins(pin))})")
    return mismatches


def next_spki_pins(pin: dict[str, Any]) -> list[str]:
    """The entry's announced next-key SPKI pins, normalized (``[]`` for a pin file without any)."""
    value = pin.get("next_spki_sha256") or []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list):
        raise ValueError(f"next_spki_sha256 must be a list of SPKI pins, not {type(value).__name__}")
    return [normalize_spki(str(v)) for v in values if v]


class PinStoreError(Exception):
    """The pin file cannot be read or written."""


class PinStore:
    """``known_servers.json``: ``{"version": 1, "servers": {"host:port": {...}}}``.

    Each entry keeps ``fingerprint_sha256``, ``spki_sha256`` and the fields shown when it was
    accepted (subject, issuer, SANs, validity, key), plus ``accepted_at``.

    Read whole or not at all: every key is read in :func:`server_key`'s one spelling (a file
    written by hand or by the role with ``FTP1.Example.:21`` or ``[2001:DB8::5]:21`` still pins
    that server), every entry must be a usable pin (:func:`check_pin_entry`); a key that names no
    server, two spellings of one server with different pins, or an unusable entry is a
    :class:`PinStoreError` naming it, never a pin silently ignored or a traceback.

    Changes (:meth:`put`, :meth:`remove`) are remembered and :meth:`save` applies them to the file
    as it is *then*, under an exclusive lock on its directory: two people (or two terminals)
    accepting different servers at the same time both keep their entry.
    """

    VERSION = 1

    def __init__(self, path: str) -> None:
        self.path = os.path.expanduser(path)
        self.servers: dict[str, dict[str, Any]] = {}
        self._changes: dict[str, dict[str, Any] | None] = {}  # key -> new entry, None = removed
        self.load()

    def load(self) -> None:
        self.servers = self._read()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise PinStoreError(f"cannot read pin file {self.path}: {exc}") from exc
        if (
            not isinstance(data, dict)
            or data.get("version") != self.VERSION
            or not isinstance(data.get("servers"), dict)
        ):
            raise PinStoreError(f"pin file {self.path} is not a version {self.VERSION} known_servers file")
        servers: dict[str, dict[str, Any]] = {}
        for written, raw in data["servers"].items():
            try:
                key = parse_server_key(written)
                entry = check_pin_entry(_upgrade_entry(raw))
            except ValueError as exc:
                raise PinStoreError(f"pin file {self.path}: entry {printable(written)!r}: {exc}") from None
            if key in servers and _pin_of(servers[key]) != _pin_of(entry):
                raise PinStoreError(
                    f"pin file {self.path}: {printable(written)!r} is {key}, which another entry pins "
                    "differently; remove one of them"
                )
            servers[key] = entry
        return servers

    def get(self, host: str, port: int) -> dict[str, Any] | None:
        return self.servers.get(server_key(host, port))

    def put(self, host: str, port: int, fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
        entry = pin_entry(fields)
        entry.update(extra)
        entry.setdefault("accepted_at", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        key = server_key(host, port)
        self.servers[key] = entry
        self._changes[key] = entry
        return entry

    def remove(self, host: str, port: int) -> bool:
        key = server_key(host, port)
        if key not in self.servers:
            return False
        del self.servers[key]
        self._changes[key] = None
        return True

    def dumps(self) -> str:
        return json.dumps({"version": self.VERSION, "servers": self.servers}, indent=2, sort_keys=True) + "\n"

    def save(self) -> None:
        """Apply this store's changes to the file as it is now, under an exclusive lock, and write
        it atomically: a temp file in the same directory, fsync, rename; mode 0600."""
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            with _locked(directory):
                current = self._read()
                for key, entry in self._changes.items():
                    if entry is None:
                        current.pop(key, None)
                    else:
                        current[key] = entry
                self.servers = current
                atomic_write(self.path, self.dumps().encode("utf-8"), 0o600)
                self._changes = {}
        except OSError as exc:
            raise PinStoreError(f"cannot write pin file {self.path}: {exc}") from exc


@contextlib.contextmanager
def _locked(directory: str) -> Any:
    """An exclusive ``flock`` on ``directory`` for the block (no lock file left behind); where
    there is no ``fcntl`` (not a POSIX host) the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _pin_of(entry: dict[str, Any]) -> tuple[Any, ...]:
    return (entry.get("fingerprint_sha256"), entry.get("spki_sha256"), tuple(next_spki_pins(entry)))


def check_pin_entry(entry: Any) -> dict[str, Any]:
    """``entry`` if it is a usable pin, else ValueError saying why: a mapping with a
    ``fingerprint_sha256`` (any spelling) and/or an ``spki_sha256`` (base64 or hex), each a valid
    SHA-256, and ``next_spki_sha256`` a list of valid SPKI pins when present. The fingerprint
    comes back in the one format; every other text (subject, ``source``, ``accepted_at``, ...) is
    shown to people, so it comes back :func:`.x509.printable` (a line break in a hand-edited or
    hostile file cannot fake a line of ftps-trust's output)."""
    if not isinstance(entry, dict):
        raise ValueError(f"must be a mapping, not {type(entry).__name__}")
    fingerprint, spki = entry.get("fingerprint_sha256"), entry.get("spki_sha256")
    if not fingerprint and not spki:
        raise ValueError("a pin needs fingerprint_sha256 or spki_sha256")
    checked = {
        key: printable(value)
        if isinstance(value, str)
        else [printable(v) if isinstance(v, str) else v for v in value]
        if isinstance(value, list)
        else value
        for key, value in entry.items()
    }
    if fingerprint:
        if not isinstance(fingerprint, str):
            raise ValueError("fingerprint_sha256 must be a string")
        checked["fingerprint_sha256"] = normalize_fingerprint(fingerprint)
    if spki:
        if not isinstance(spki, str):
            raise ValueError("spki_sha256 must be a string")
        normalize_spki(spki)
    next_spki_pins(entry)
    return checked


def _upgrade_entry(entry: Any) -> Any:
    """An entry as this version writes it: a fingerprint saved in another spelling (the old
    upper-case, colon-separated one) is read in :func:`.x509.sha256_fingerprint`'s format, so the
    next save rewrites it; anything unreadable is left for :func:`check_pin_entry` to reject."""
    if isinstance(entry, dict) and isinstance(entry.get("fingerprint_sha256"), str):
        with contextlib.suppress(ValueError):
            entry = {**entry, "fingerprint_sha256": normalize_fingerprint(entry["fingerprint_sha256"])}
    return entry


_PIN_FIELDS = ("subject", "issuer", "sans", "not_before", "not_after", "serial_hex", "signature_algorithm")


def pin_entry(fields: dict[str, Any]) -> dict[str, Any]:
    """What a pin store keeps about an accepted certificate."""
    entry = {key: fields[key] for key in _PIN_FIELDS if key in fields}
    entry["fingerprint_sha256"] = fields["fingerprint_sha256"]
    entry["spki_sha256"] = fields.get("spki_sha256")
    key = fields.get("public_key") or {}
    entry["public_key"] = describe_key(key) if key else None
    return entry


# ---------------------------------------------------------------------------------------------
# Probe: connect, verify, compare with pins, prove the data channel
# ---------------------------------------------------------------------------------------------


class ProbeError(Exception):
    """A probe failed. ``kind`` is one of :data:`ERROR_KINDS`; ``str()`` is for people."""

    def __init__(self, kind: str, message: str, result: dict[str, Any] | None = None) -> None:
        # Messages quote what the server said (its replies, its certificate's names): shown to
        # people, so never with a character a terminal would act on (x509.printable).
        message = printable(message)
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.result = result or {}


ERROR_KINDS = (
    "connect",  # TCP connection failed or timed out
    "implicit_port",  # explicit FTPS asked of a port that speaks TLS from the first byte
    "no_tls",  # AUTH TLS refused, or plaintext on the implicit port
    "tls",  # TLS handshake failed for another reason (protocol, cipher)
    "unknown_ca",  # the chain does not lead to a trusted CA
    "hostname_mismatch",  # the name connected to is not in the certificate's SANs
    "expired",  # the certificate's notAfter has passed
    "not_yet_valid",  # the certificate's notBefore is in the future
    "verify",  # another verification failure (revoked, bad signature, ...)
    "client_cert",  # the client certificate or its key cannot be loaded
    "pin_mismatch",  # the certificate differs from the pinned one
    "login",  # credentials refused
    "transfer",  # a data connection or the round trip failed
)

# OpenSSL X509_V_ERR_* codes -> kind.
_VERIFY_KINDS = {
    2: "unknown_ca",  # unable to get issuer certificate
    9: "not_yet_valid",
    10: "expired",
    18: "unknown_ca",  # self-signed certificate
    19: "unknown_ca",  # self-signed certificate in chain
    20: "unknown_ca",  # unable to get local issuer certificate
    21: "unknown_ca",  # unable to verify the first certificate
    62: "hostname_mismatch",
    64: "hostname_mismatch",  # IP address mismatch
}


# X509_V_ERR_INVALID_PURPOSE: the certificate's key usage or EKU excludes TLS server use.
_X509_V_ERR_INVALID_PURPOSE = 26


def make_context(
    *,
    verify: bool = True,
    ca_file: str | None = None,
    check_hostname: bool = True,
    client_cert: str | None = None,
    client_key: str | None = None,
) -> ssl.SSLContext:
    """A client context: the system store (or ``ca_file``), TLS 1.2+, hostname check; with
    ``client_cert`` (PEM: the certificate, then any intermediates) and ``client_key`` (PEM,
    unencrypted; default: in ``client_cert``) it presents that client certificate when the
    server asks (docs/client.md, "Client certificates")."""
    if not verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
        ctx.check_hostname = check_hostname
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_cert:
        ctx.load_cert_chain(client_cert, client_key or None)
    elif client_key:
        raise ValueError("client_key needs client_cert")
    return ctx


def hostname_matches(name: str, sans: list[str]) -> bool:
    """RFC 6125 matching of ``name`` against SANs, as OpenSSL matches for the ``ssl`` module, for
    display: a name in :func:`canonical_host`'s spelling (an internationalized name as its
    A-labels, no trailing dot), a wildcard only as the whole left-most label and over at least two
    more labels (``*.example.test``; never ``*.test`` or ``*.*.example.test``), an address only
    against ``IP:`` SANs."""
    try:
        name = canonical_host(name)
    except ValueError:
        return False
    if ":" in name or name.replace(".", "").isdigit():
        with contextlib.suppress(ValueError):
            address = ipaddress.ip_address(name)
            return any(s.startswith("IP:") and _same_address(s[3:], address) for s in sans)
    first, _dot, parent = name.partition(".")
    for san in sans:
        if not san.startswith("DNS:"):
            continue
        pattern = san[4:].lower()
        pattern = pattern[:-1] if pattern.endswith(".") else pattern
        if pattern == name:
            return True
        if pattern.startswith("*.") and first and pattern[2:] == parent and pattern.count(".") >= 2:
            return True
    return False


def _same_address(text: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(text) == address
    except ValueError:
        return False


def _verify_message(
    kind: str, exc: ssl.SSLCertVerificationError, name: str, fields: dict[str, Any] | None
) -> str:
    f = fields or {}
    if kind == "unknown_ca":
        where = "the CA file given" if getattr(exc, "_ftps_ca_file", None) else "the trusted CAs"
        return (
            f"certificate from an unknown CA: {f.get('subject', 'the server certificate')} issued by "
            f"{f.get('issuer', '?')} does not chain to {where} ({exc.verify_message})"
        )
    if kind == "hostname_mismatch":
        return (
            f"hostname mismatch: {name} is not in the certificate's SANs "
            f"({', '.join(f.get('sans') or []) or 'none'})"
        )
    if kind == "expired":
        return f"certificate expired on {f.get('not_after', '?')} ({f.get('subject', '')})"
    if kind == "not_yet_valid":
        return f"certificate not valid before {f.get('not_before', '?')} ({f.get('subject', '')})"
    if exc.verify_code == _X509_V_ERR_INVALID_PURPOSE:
        what = "is a CA certificate" if f.get("is_ca") else "has a key usage that excludes TLS servers"
        return (
            f"certificate not meant for a server: {f.get('subject', 'the server certificate')} {what} "
            f"(a client's or a CA's certificate presented as a server's: {exc.verify_message}, "
            f"code {exc.verify_code})"
        )
    return f"certificate verification failed: {exc.verify_message} (code {exc.verify_code})"


def _connect(
    host: str,
    port: int,
    *,
    implicit: bool,
    context: ssl.SSLContext,
    timeout: float,
    server_hostname: str | None,
) -> FTPSClient:
    client = FTPSClient(context=context, implicit=implicit, timeout=timeout, server_hostname=server_hostname)
    try:
        client.connect(host, port)
        if not implicit:
            try:
                client.auth()
            except ftplib.error_perm as exc:
                raise _AuthRefused(str(exc).strip()) from exc
    except BaseException:
        client.close()
        raise
    return client


class _AuthRefused(Exception):
    """The server answered AUTH TLS with a permanent error."""


def _tls_or_raise(
    host: str,
    port: int,
    *,
    implicit: bool,
    context: ssl.SSLContext,
    timeout: float,
    server_hostname: str | None,
) -> FTPSClient:
    """Connect and complete TLS, turning transport problems into :class:`ProbeError`."""
    where = server_label(host, port)
    try:
        return _connect(
            host, port, implicit=implicit, context=context, timeout=timeout, server_hostname=server_hostname
        )
    except ssl.SSLCertVerificationError:
        raise
    except ImplicitPortError as exc:
        raise ProbeError(
            "implicit_port",
            f"{where} sent no FTP greeting but answers a TLS handshake:"
            " this looks like an implicit FTPS port",
        ) from exc
    except NoGreetingError as exc:
        raise ProbeError(
            "connect", f"{where} accepted the connection but sent no FTP greeting ({exc})"
        ) from exc
    except _AuthRefused as exc:
        raise ProbeError(
            "no_tls", f"server without TLS: {where} refused AUTH TLS ({exc}); it offers plaintext only"
        ) from exc
    except ssl.SSLError as exc:
        if implicit and ("WRONG_VERSION_NUMBER" in str(exc) or "record layer" in str(exc)):
            said = _plaintext_greeting(host, port, timeout)
            if said[:1] in ("4", "5"):
                raise ProbeError(
                    "connect", f"{where} refused the connection in plaintext before TLS: {said!r}"
                ) from exc
            raise ProbeError(
                "no_tls",
                f"server without TLS: {where} did not speak TLS on the implicit port"
                + (f"; it answered in plaintext: {said!r}" if said else " (plaintext FTP?)"),
            ) from exc
        raise ProbeError("tls", f"TLS handshake with {where} failed: {exc}") from exc
    except (ConnectionError, TimeoutError, socket.gaierror, OSError, EOFError, ftplib.Error) as exc:
        raise ProbeError("connect", f"cannot reach an FTP server at {where}: {exc}") from exc


def _plaintext_greeting(host: str, port: int, timeout: float) -> str:
    """The first line a server sends unprompted (a plaintext FTP greeting or refusal), or ""."""
    try:
        with open_tcp((host, port), min(timeout, 5.0)) as raw:
            raw.settimeout(min(timeout, 3.0))
            data = raw.recv(512)
    except OSError:
        return ""
    return data.decode("utf-8", "replace").splitlines()[0].strip() if data.strip() else ""


def fetch_certificate(
    host: str,
    port: int = 0,
    *,
    implicit: bool = False,
    timeout: float = 15.0,
    server_hostname: str | None = None,
) -> dict[str, Any]:
    """Connect without verifying and return what the server presents (for display only)."""
    port = port or (990 if implicit else 21)
    client = _tls_or_raise(
        host,
        port,
        implicit=implicit,
        context=make_context(verify=False),
        timeout=timeout,
        server_hostname=server_hostname,
    )
    try:
        return _session_facts(client)
    finally:
        _quit(client)


def _session_facts(client: FTPSClient) -> dict[str, Any]:
    der = client.peer_certificate()
    chain, complete = client.peer_chain()
    facts = client.tls_facts()
    return {
        "certificate": _fields_or_fingerprint(der) if der else None,
        "certificate_pem": der_to_pem(der) if der else None,
        "chain": [_fields_or_fingerprint(c) for c in chain],
        "chain_complete": complete,
        "chain_note": None
        if complete
        else "Python < 3.13 exposes only the leaf certificate of the served chain",
        "tls_version": facts.get("version"),
        "cipher": facts.get("cipher"),
    }


def _fields_or_fingerprint(der: bytes) -> dict[str, Any]:
    """The certificate's fields; if this reader cannot parse it, at least its fingerprint."""
    try:
        return parse_certificate(der)
    except CertificateParseError as exc:
        return {"fingerprint_sha256": sha256_fingerprint(der), "parse_error": str(exc)}


def _quit(client: FTPSClient) -> None:
    with contextlib.suppress(Exception):
        client.quit()
    with contextlib.suppress(Exception):
        client.close()


def probe(
    host: str,
    port: int = 0,
    *,
    implicit: bool = False,
    verify: bool = True,
    ca_file: str | None = None,
    server_hostname: str | None = None,
    pin: dict[str, Any] | None = None,
    username: str | None = None,
    password: str | None = None,
    check_data_channel: bool = True,
    round_trip: bool = False,
    remote_dir: str = "",
    payload_size: int = 65536,
    timeout: float = 15.0,
    client_cert: str | None = None,
    client_key: str | None = None,
) -> dict[str, Any]:
    """Connect, verify, compare with ``pin``, and (with credentials) prove the data channel.

    ``client_cert``/``client_key``: a client certificate to present (an ``auth = certificate``
    user logs in with it and no password; see :func:`make_context`).

    Returns a dict: ``certificate`` (the fields of :func:`parse_certificate`), ``chain``,
    ``tls_version``, ``cipher``, ``verified`` (chain and hostname checked), ``pin_matched``,
    ``data_session_reused`` and ``round_trip``. Raises :class:`ProbeError` on every failure;
    its ``result`` holds what was learned before the failure (the certificate's fields).
    """
    port = port or (990 if implicit else 21)
    name = server_hostname or host
    result: dict[str, Any] = {
        "host": host,
        "port": port,
        "implicit": implicit,
        "server_hostname": name,
        "verified": False,
        "pin_matched": None,
        "data_session_reused": None,
        "round_trip": None,
    }
    try:
        context = make_context(verify=verify, ca_file=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ProbeError("verify", f"cannot load the CA file {ca_file}: {exc}", result) from exc
    if client_cert or client_key:
        try:
            context.load_cert_chain(client_cert or "", client_key or None)
        except (OSError, ssl.SSLError) as exc:
            raise ProbeError(
                "client_cert",
                f"cannot load the client certificate {client_cert} / key {client_key}: {exc}",
                result,
            ) from exc
    try:
        client = _tls_or_raise(
            host, port, implicit=implicit, context=context, timeout=timeout, server_hostname=server_hostname
        )
    except ssl.SSLCertVerificationError as exc:
        kind = _VERIFY_KINDS.get(exc.verify_code, "verify")
        with contextlib.suppress(ProbeError):
            result.update(
                fetch_certificate(
                    host, port, implicit=implicit, timeout=timeout, server_hostname=server_hostname
                )
            )
        exc._ftps_ca_file = ca_file  # type: ignore[attr-defined]
        raise ProbeError(kind, _verify_message(kind, exc, name, result.get("certificate")), result) from exc
    except ProbeError as exc:
        exc.result = {**result, **exc.result}
        raise
    try:
        result.update(_session_facts(client))
        result["verified"] = verify
        fields = result["certificate"]
        if pin:
            mismatches = compare_pin(fields, pin)
            result["pin_matched"] = not mismatches
            if mismatches:
                raise ProbeError(
                    "pin_mismatch",
                    f"pin mismatch for {server_label(host, port)}: the server presents a different "
                    f"certificate than the pinned one ({'; '.join(mismatches)}); "
                    f"subject {fields['subject']}, not after {fields['not_after']}",
                    result,
                )
        if username:
            _exercise(
                client,
                result,
                username=username,
                password=password or "",
                check_data_channel=check_data_channel,
                round_trip=round_trip,
                remote_dir=remote_dir,
                payload_size=payload_size,
            )
        return result
    finally:
        _quit(client)


def _exercise(
    client: FTPSClient,
    result: dict[str, Any],
    *,
    username: str,
    password: str,
    check_data_channel: bool,
    round_trip: bool,
    remote_dir: str,
    payload_size: int,
) -> None:
    try:
        client.login(username, password)
        client.prot_p()
    except ftplib.error_perm as exc:
        raise ProbeError("login", f"login as {username} refused: {str(exc).strip()}", result) from exc
    except (OSError, EOFError, ftplib.Error) as exc:
        raise ProbeError("login", f"login as {username} failed: {exc}", result) from exc
    try:
        if remote_dir:
            client.cwd(remote_dir)
        if check_data_channel:
            client.nlst()
        if round_trip:
            result["round_trip"] = _round_trip(client, payload_size)
    except (OSError, EOFError, ftplib.Error) as exc:
        result["data_session_reused"] = client.tls_facts().get("data_session_reused")
        reuse = (
            " (the server may require TLS session reuse)" if "522" in str(exc) or "425" in str(exc) else ""
        )
        raise ProbeError("transfer", f"data connection failed: {str(exc).strip()}{reuse}", result) from exc
    result["data_session_reused"] = client.tls_facts().get("data_session_reused")


def _round_trip(client: FTPSClient, size: int) -> dict[str, Any]:
    """Upload random bytes, download them, compare SHA-256, delete."""
    payload = os.urandom(size)
    remote = f".ftps-probe-{os.getpid()}-{binascii.hexlify(os.urandom(4)).decode()}"
    digest = hashlib.sha256(payload).hexdigest()
    client.storbinary(f"STOR {remote}", io.BytesIO(payload))
    received = io.BytesIO()
    try:
        client.retrbinary(f"RETR {remote}", received.write)
    finally:
        with contextlib.suppress(ftplib.Error, OSError):
            client.delete(remote)
    got = hashlib.sha256(received.getvalue()).hexdigest()
    if got != digest:
        raise ftplib.Error(  # noqa: S321 - an exception class, no FTP call
            f"round trip corrupted {remote}: sent sha256 {digest}, received {got}"
        )
    return {"file": remote, "bytes": size, "sha256": digest, "match": True, "deleted": True}
