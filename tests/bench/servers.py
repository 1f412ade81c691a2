"""The three servers under test, each started by hand on 127.0.0.1 inside its own cpuacct cgroup.

* ftpsd with its deployed defaults (TLS required, session reuse required, one worker per core,
  scrypt hashes, info logging + xferlog), except the per-IP cap (0, like vsftpd's ``max_per_ip=0``)
  so that 50 sessions from one address are allowed.
* Debian's vsftpd configured the same way: ``force_local_*_ssl``, ``require_ssl_reuse``,
  ``max_per_ip=0``, ECDSA-capable ciphers, PAM login of a local user (yescrypt).
* stock pyftpdlib ``TLS_FTPHandler`` (``tests/bench/stock_pyftpdlib.py``).
* Debian's ProFTPD 1.3.8 with mod_tls, unpacked from its packages (``tests/bench/proftpd.py``),
  configured the same way: TLS required, session reuse required, the same local user and
  yescrypt hash (in an ``AuthUserFile``), chrooted to its home.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.bench import proftpd
from tests.bench.env import BenchEnv, BenchError, CpuCgroup, crypt_cost, ensure_vsftpd, median_seconds
from tests.paths import ROOT as REPO

HOST = "127.0.0.1"
# Ports outside the ephemeral range (32768-60999 here), one block per server.
PORTS = {
    "ftpsd": (20121, (61000, 62999)),
    "vsftpd": (20221, (63000, 64999)),
    "pyftpdlib": (20321, None),
    "ftpsd-base": (20421, (65000, 65499)),
    "proftpd": (20521, (30000, 31999)),
}

VSFTPD_CONF = """\
# ftpsbench: vsftpd configured like ftpsd's defaults (TLS required, session reuse required).
listen=YES
listen_ipv6=NO
listen_address={host}
listen_port={port}
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
pasv_enable=YES
pasv_min_port={pasv_lo}
pasv_max_port={pasv_hi}
max_clients=0
max_per_ip=0
ssl_enable=YES
rsa_cert_file={cert}
rsa_private_key_file={key}
# vsftpd 3.0.3's default list works only with RSA keys on TLS 1.2 (TLS 1.3 suites are separate).
ssl_ciphers=ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305
force_local_data_ssl=YES
force_local_logins_ssl=YES
require_ssl_reuse=YES
allow_anon_ssl=NO
ssl_sslv2=NO
ssl_sslv3=NO
pam_service_name=vsftpd
secure_chroot_dir=/var/run/vsftpd/empty
xferlog_enable=NO
idle_session_timeout=600
data_connection_timeout=300
"""

FTPSD_TOML = """\
# ftpsbench: ftpsd's deployed defaults, on loopback, files on tmpfs.
[server]
listen = ["{host}"]
control_port = {port}
implicit_port = 0
passive_ports = [{pasv_lo}, {pasv_hi}]
max_connections_per_ip = 0
workers = {workers}
runtime_dir = "{runtime_dir}"
{server_extra}
[tls]
certfile = "{cert}"
keyfile = "{key}"
chainfile = "{chain}"

[users]
file = "{users}"

[logging]
level = "info"
xferlog = "{xferlog}"
"""


def wait_banner(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server on port {port} exited with status {proc.returncode} at start")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=2) as s:
            if s.recv(64).startswith(b"220"):
                return
        time.sleep(0.2)
    raise BenchError(f"no 220 banner on {HOST}:{port} after {timeout:.0f} s")


class Server:
    """A server process tree in its own cgroup; subclasses say how to configure and start it."""

    name = ""

    def __init__(self, env: BenchEnv) -> None:
        self.env = env
        self.port, self.pasv = PORTS[self.name]
        self.home = env.home(self.name)
        self.workdir = env.mountpoint / "srv" / self.name
        self.proc: subprocess.Popen | None = None
        self.cgroup: CpuCgroup | None = None
        self.user = env.user
        self.password = env.password
        self.hash_scheme = ""
        self.login_cost = 0.0
        self.version = ""

    class Unavailable(BenchError):
        """This server cannot be obtained here; the benchmark runs without it (the message says why)."""

    def obtain(self) -> None:
        """Get what the server needs before anything starts; :class:`Unavailable` skips the server."""

    # -- subclass API -------------------------------------------------------------------------
    def prepare(self) -> list[str]:
        """Write configuration; return the argv to exec."""
        raise NotImplementedError

    def environ(self) -> dict[str, str]:
        return dict(os.environ)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = self.prepare()
        self.cgroup = CpuCgroup(self.name)
        self.log = (self.workdir / "server.log").open("wb")
        self.proc = subprocess.Popen(
            self.cgroup.wrap(argv), stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            env=self.environ(), cwd=self.workdir, start_new_session=True,
        )  # fmt: skip
        wait_banner(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.cgroup is not None:
            self.cgroup.close()
        if getattr(self, "log", None):
            self.log.close()

    def cpu_seconds(self) -> float:
        assert self.cgroup is not None
        return self.cgroup.usage_seconds()

    def pss_kib(self, field: str = "Pss") -> int:
        assert self.cgroup is not None
        return self.cgroup.pss_kib(field)

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.workdir / "server.log").read_text(errors="replace").splitlines()[-lines:])
        return ""


class Vsftpd(Server):
    name = "vsftpd"

    def prepare(self) -> list[str]:
        binary = ensure_vsftpd()
        self.env.ensure_user()
        shutil.chown(self.home, self.env.user, self.env.user)
        self.hash_scheme = "yescrypt via PAM (libxcrypt default cost, as Debian 12's pam_unix)"
        self.login_cost = crypt_cost(self.password, self.env.shadow_hash)
        conf = self.workdir / "vsftpd.conf"
        conf.write_text(
            VSFTPD_CONF.format(
                host=HOST, port=self.port, pasv_lo=self.pasv[0], pasv_hi=self.pasv[1],
                cert=self.env.pki["fullchain"], key=self.env.pki["key"],
            )
        )  # fmt: skip
        conf.chmod(0o600)
        return [binary, str(conf)]


class StockPyftpdlib(Server):
    name = "pyftpdlib"

    def prepare(self) -> list[str]:
        self.hash_scheme = "none: DummyAuthorizer compares plaintext"
        self.login_cost = 0.0
        return [
            sys.executable, "-m", "tests.bench.stock_pyftpdlib", str(self.port), str(self.home),
            str(self.env.pki["fullchain"]), str(self.env.pki["key"]),
        ]  # fmt: skip

    def environ(self) -> dict[str, str]:
        return dict(
            os.environ, PYTHONPATH=str(REPO), FTPSBENCH_USER=self.user, FTPSBENCH_PASSWORD=self.password
        )


class Ftpsd(Server):
    name = "ftpsd"
    workers = 0  # deployed default: one per core; the profiler uses 1
    scrypt_ln = 0  # 0 = ftpsd's default hash; else scrypt with this ln (r=8, p=1), for comparison
    # populate() hard-links the data files into every home; ftpsd refuses such files by default.
    server_extra = "allow_hard_links = true\n"

    def prepare(self) -> list[str]:
        from ftpskit_common.passwd import hash_password, verify_password

        encoded = hash_password(self.password) if not self.scrypt_ln else self._scrypt(self.scrypt_ln)
        self.hash_scheme = encoded.rsplit("$", 2)[0] + (
            " (ftpsd default)" if not self.scrypt_ln else " (what-if)"
        )
        self.login_cost = median_seconds(lambda: verify_password(self.password, encoded))
        users = self.workdir / "users.json"
        users.write_text(
            json.dumps({
                "version": 1,
                "users": [{"name": self.user, "hash": encoded, "home": str(self.home), "perm": "rw",
                           "max_rate": 0, "max_connections": 0}],
            })
        )  # fmt: skip
        users.chmod(0o600)
        conf = self.workdir / "ftpsd.toml"
        conf.write_text(
            FTPSD_TOML.format(
                host=HOST, port=self.port, pasv_lo=self.pasv[0], pasv_hi=self.pasv[1],
                cert=self.env.pki["cert"], key=self.env.pki["key"], chain=self.env.pki["chain"],
                users=users, xferlog=self.workdir / "xferlog", workers=self.workers,
                runtime_dir=self.workdir / "run", server_extra=self.server_extra,
            )
        )  # fmt: skip
        ftpsd = Path(sys.executable).with_name("ftpsd")
        argv = [str(ftpsd)] if ftpsd.exists() else [sys.executable, "-m", "ftpsd"]
        return [*argv, "--config", str(conf)]

    def environ(self) -> dict[str, str]:
        from ftpsd.heap import TUNABLES

        return dict(os.environ, GLIBC_TUNABLES=TUNABLES)  # as the ftps_server role's unit sets it

    def _scrypt(self, ln: int) -> str:
        """A users-file scrypt hash with another cost (same format ftpsd.passwd writes)."""
        salt = os.urandom(16)
        digest = hashlib.scrypt(
            self.password.encode(), salt=salt, n=1 << ln, r=8, p=1, maxmem=256 << 20, dklen=32
        )
        b64 = lambda raw: base64.b64encode(raw).decode("ascii").rstrip("=")  # noqa: E731
        return f"$scrypt$ln={ln},r=8,p=1${b64(salt)}${b64(digest)}"


class FtpsdBaseline(Ftpsd):
    """ftpsd as it was at another commit (``--baseline REF``), for before/after ratios in one run.

    ``git archive REF src/ftpsd`` is unpacked into the server's work directory and put first on
    PYTHONPATH; the configuration, users file and certificate are the same as for ``ftpsd``.
    """

    name = "ftpsd-base"
    ref = ""  # set by tests.bench from --baseline

    def prepare(self) -> list[str]:
        if not self.ref:
            raise BenchError("ftpsd-base needs --baseline REF (a git commit of this repository)")
        tree = self.workdir / "baseline"
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", self.ref, "src/ftpsd"],
            check=True, capture_output=True,
        ).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        self.source = tree / "src"
        # An ftpsd from before allow_hard_links serves linked files and refuses the key; a later
        # one refuses the hard-linked data files without it (every transfer: 550).
        knows_links = "allow_hard_links" in (self.source / "ftpsd" / "config.py").read_text()
        self.server_extra = Ftpsd.server_extra if knows_links else ""
        argv = super().prepare()
        return [sys.executable, "-m", "ftpsd", *argv[argv.index("--config") :]]

    tunables: str | None = None  # GLIBC_TUNABLES instead of the unit's (--baseline-tunables; "" = unset)

    def environ(self) -> dict[str, str]:
        env = dict(super().environ(), PYTHONPATH=str(self.source))
        if self.tunables is not None:
            env["GLIBC_TUNABLES"] = self.tunables
            if not self.tunables:
                del env["GLIBC_TUNABLES"]
        return env


class Proftpd(Server):
    """ProFTPD from Debian's packages, unpacked into the work directory (see tests/bench/proftpd.py).

    The master runs as root like vsftpd (so that ``DefaultRoot`` can chroot and each session can
    switch to the user), in the foreground (``-n``), and runs as ``nobody`` between sessions.
    """

    name = "proftpd"

    def obtain(self) -> None:
        try:
            self.paths, self.version = proftpd.obtain(self.workdir / "root")
        except proftpd.ProftpdUnavailable as exc:
            raise Server.Unavailable(f"ProFTPD column skipped: {exc}") from exc

    def prepare(self) -> list[str]:
        self.env.ensure_user()
        account = pwd.getpwnam(self.env.user)
        shutil.chown(self.home, self.env.user, account.pw_gid)
        self.hash_scheme = "yescrypt in AuthUserFile (the vsftpd user's hash, crypt(3))"
        self.login_cost = crypt_cost(self.password, self.env.shadow_hash)
        passwd, group = self.workdir / "ftpd.passwd", self.workdir / "ftpd.group"
        passwd.write_text(
            proftpd.passwd_line(self.user, self.env.shadow_hash, account.pw_uid, account.pw_gid, self.home)
        )
        group.write_text(proftpd.group_line(self.user, account.pw_gid, [self.user]))
        passwd.chmod(0o600)
        conf = self.workdir / "proftpd.conf"
        conf.write_text(
            proftpd.proftpd_conf(
                host=HOST, port=self.port, pasv_lo=self.pasv[0], pasv_hi=self.pasv[1],
                run_user="nobody", run_group="nogroup", workdir=self.workdir,
                modules=self.paths["modules"], passwd=passwd, group=group,
                cert=self.env.pki["cert"], key=self.env.pki["key"], chain=self.env.pki["chain"],
            )
        )  # fmt: skip
        conf.chmod(0o600)
        return [str(self.paths["binary"]), "-n", "-c", str(conf)]

    def environ(self) -> dict[str, str]:
        return proftpd.library_env(self.paths)

    def log_tail(self, lines: int = 15) -> str:
        own = ""
        with contextlib.suppress(OSError):
            own = "\n".join((self.workdir / "proftpd.log").read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(filter(None, [super().log_tail(lines), own]))


SERVERS: dict[str, type[Server]] = {
    "ftpsd": Ftpsd,
    "vsftpd": Vsftpd,
    "pyftpdlib": StockPyftpdlib,
    "ftpsd-base": FtpsdBaseline,
    "proftpd": Proftpd,
}
