"""Start a real ftpsd on 127.0.0.1 (ephemeral ports, test CA, users) and always stop it."""

from __future__ import annotations

import contextlib
import os
import pathlib
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ftpskit_common.client import (
    FTPSClient,
)
from ftpskit_common.passwd import dump_users, hash_password
from tests.certs import Issued, TestCA, point_current, write_generation

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "dave": "dave-pw"}
_HASHES: dict[str, str] = {}


def _hash(name: str) -> str:
    if name not in _HASHES:
        _HASHES[name] = hash_password(PASSWORDS[name])
    return _HASHES[name]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _free_range(size: int = 20) -> tuple[int, int]:
    for _ in range(50):
        base = random.randint(30000, 48000)
        ok = True
        for port in range(base, base + size):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base, base + size - 1
    raise RuntimeError("no free passive port range")


@dataclass
class Server:
    root: pathlib.Path
    ca: TestCA
    pki: pathlib.Path
    port: int
    implicit_port: int
    config_path: pathlib.Path
    log_path: pathlib.Path
    xferlog: pathlib.Path
    homes: dict[str, pathlib.Path]
    cafile: pathlib.Path
    cert: Issued
    runtime_dir: pathlib.Path
    proc: subprocess.Popen | None = None
    generation: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # added to the daemon's environment

    # -- process ----------------------------------------------------------------------
    def start(self) -> None:
        """Start (or start again, after stop() or kill()) and wait until every worker listens."""
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log_start = self._log.tell()
        # Its own process group, as in its systemd cgroup: kill() reaches every worker.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ftpsd", "--config", str(self.config_path)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        ports = [self.port] + ([self.implicit_port] if self.implicit_port else [])
        # Wait for the log, not by connecting: probe connections would count against the
        # per-IP limit until the server has noticed they closed.
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ftpsd exited with {self.proc.returncode}:\n{self.log()}")
            if self.log()[self._log_start :].count("listening on") >= len(ports) * self.workers:
                return
            time.sleep(0.05)
        raise RuntimeError(f"ftpsd did not start:\n{self.log()}")

    @property
    def workers(self) -> int:
        return int(self.options.get("workers", 1))

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the supervisor and every worker at once (systemd's final SIGKILL of the unit)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, needle: str, count: int = 1, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            if text.count(needle) >= count:
                return text
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} x{count} not in ftpsd log:\n{self.log()[-4000:]}")

    def reload(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def reload_command(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """``ftpsd reload`` (what the unit's ExecReload runs), with the daemon's pid."""
        assert self.proc is not None
        command = [sys.executable, "-m", "ftpsd", "reload", "--config", str(self.config_path)]
        return subprocess.run(
            [*command, "--pid", str(self.proc.pid), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    # -- PKI --------------------------------------------------------------------------
    def rotate(self, issued: Issued | None = None, *, key_from: Issued | None = None) -> Issued:
        """Write a new generation and swap `current` to it (as ftps_pki does)."""
        issued = issued or self.ca.issue()
        self.generation += 1
        gen = write_generation(self.pki, f"gen-{self.generation}", issued, self.ca)
        if key_from is not None:
            from tests.certs import key_pem

            (gen / "key.pem").write_bytes(key_pem(key_from))
            (gen / "key.pem").chmod(0o640)
        point_current(self.pki, gen)
        return issued

    # -- clients ----------------------------------------------------------------------
    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cafile))

    def client(
        self, user: str = "alice", *, implicit: bool = False, reuse_session: bool = True, login: bool = True
    ) -> FTPSClient:
        ftp = FTPSClient(
            "127.0.0.1",
            self.implicit_port if implicit else self.port,
            context=self.context(),
            implicit=implicit,
            reuse_session=reuse_session,
            timeout=20,
        )
        if login:
            ftp.login(user, PASSWORDS[user])
            ftp.prot_p()
        return ftp

    def served_fingerprint(self, port: int | None = None) -> str:
        """SHA-256 of the certificate a fresh explicit-FTPS session is served."""
        ftp = FTPSClient("127.0.0.1", port or self.port, context=self.context(), timeout=20)
        try:
            ftp.auth()
            der = ftp.sock.getpeercert(binary_form=True)
        finally:
            with contextlib.suppress(Exception):
                ftp.close()
        import hashlib

        return hashlib.sha256(der).hexdigest()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def write_config(path: pathlib.Path, sections: dict[str, dict[str, Any]]) -> None:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))


def build_server(tmp: pathlib.Path, **options: Any) -> Server:
    """Lay out a server directory; ``options`` override [server]/[tls] keys or per-user fields
    (``users``), ``env`` adds to the daemon's environment."""
    tmp.mkdir(parents=True, exist_ok=True)
    ca = TestCA()
    pki = tmp / "pki"
    cert = ca.issue()
    gen = write_generation(pki, "gen-1", cert, ca)
    point_current(pki, gen)
    cafile = ca.write_root(tmp / "ca.pem")
    homes = {}
    user_fields = options.pop("users", {})
    env = options.pop("env", {})
    users = []
    perms = {"alice": "rw", "bob": "ro", "carol": "upload", "dave": "rw"}
    for name, perm in perms.items():
        home = tmp / "homes" / name
        home.mkdir(parents=True)
        homes[name] = home
        entry = {"name": name, "hash": _hash(name), "home": str(home), "perm": perm}
        entry.update(user_fields.get(name, {}))
        users.append(entry)
    dump_users(users, str(tmp / "users.json"))
    passive = _free_range()

    def outside_passive() -> int:
        while True:
            candidate = free_port()
            if not passive[0] <= candidate <= passive[1]:
                return candidate

    port = outside_passive()
    implicit_port = options.pop("implicit_port", None)
    if implicit_port is None:
        implicit_port = outside_passive()
        while implicit_port == port:
            implicit_port = outside_passive()
    tls_keys = {
        "min_version",
        "tls13",
        "ciphers",
        "require_session_reuse",
        "client_ca_file",
        "client_crl_file",
        "client_cert_field",
        "client_cert_explicit",
        "client_cert_implicit",
    }
    server = {
        "listen": ["127.0.0.1"],
        "control_port": port,
        "implicit_port": implicit_port,
        "passive_ports": list(passive),
        "workers": 1,
        "idle_timeout": 60,
        "data_timeout": 60,
        "login_failure_delay": 0.2,
        "ban_after_failures": 5,
        "ban_seconds": 600,
        "runtime_dir": str(tmp / "run"),
    }
    tls = {
        "certfile": str(pki / "current" / "cert.pem"),
        "keyfile": str(pki / "current" / "key.pem"),
        "chainfile": str(pki / "current" / "chain.pem"),
    }
    for key, value in options.items():
        (tls if key in tls_keys else server)[key] = value
    config_path = tmp / "ftpsd.toml"
    xferlog = tmp / "xferlog"
    write_config(
        config_path,
        {
            "server": server,
            "tls": tls,
            "users": {"file": str(tmp / "users.json")},
            "logging": {"level": "info", "xferlog": str(xferlog)},
        },
    )
    return Server(
        root=tmp,
        ca=ca,
        pki=pki,
        port=port,
        implicit_port=implicit_port,
        config_path=config_path,
        log_path=tmp / "ftpsd.log",
        xferlog=xferlog,
        homes=homes,
        cafile=cafile,
        cert=cert,
        runtime_dir=pathlib.Path(server["runtime_dir"]),
        options={"workers": server["workers"]},
        env=env,
    )


@pytest.fixture
def make_server(tmp_path: pathlib.Path) -> Iterator[Callable[..., Server]]:
    """Factory: ``make_server(**options)`` builds, starts and (always) stops an ftpsd."""
    started: list[Server] = []

    def factory(**options: Any) -> Server:
        server = build_server(tmp_path / f"s{len(started)}", **options)
        started.append(server)
        server.start()
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    return make_server()
