"""The benchmark's environment: tmpfs data dir, cpuacct cgroups, test PKI, a local user, vsftpd.

Everything created here is removed by :meth:`BenchEnv.close` (the tmpfs is unmounted, the cgroups
and the local user deleted). vsftpd is installed on first use only, with services kept from
starting, because the benchmark is its only user.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import platform
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.certs import TestCA, cert_pem, key_pem

CGROUP_ROOTS = ("/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup")
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
BENCH_USER = "ftpsbench"
BENCH_UID_NAME = BENCH_USER


class BenchError(RuntimeError):
    """The benchmark cannot run; the message says why in one line."""


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, check=True, capture_output=True, text=True, timeout=kw.pop("timeout", 600), **kw
    )


# -- cgroups ------------------------------------------------------------------------------------
def cpuacct_root() -> Path:
    """The mounted cpuacct hierarchy (cgroup v1 'hybrid' here; v2 fallback uses cpu.stat)."""
    for root in CGROUP_ROOTS:
        p = Path(root)
        if (p / "cpuacct.usage").exists() or ((p / "cpu.stat").exists() and root == "/sys/fs/cgroup"):
            return p
    raise BenchError("no cpuacct cgroup controller mounted (looked in " + ", ".join(CGROUP_ROOTS) + ")")


class CpuCgroup:
    """A dedicated cgroup for one server: everything it forks is counted and can be listed."""

    def __init__(self, name: str) -> None:
        self.path = cpuacct_root() / f"ftpsbench-{name}"
        self.v1 = (self.path.parent / "cpuacct.usage").exists()
        if self.path.exists():
            self.kill_all()
            self.path.rmdir()
        self.path.mkdir()

    def wrap(self, argv: list[str]) -> list[str]:
        """argv run inside this cgroup: a shell joins it, then execs the server."""
        procs = self.path / "cgroup.procs"
        return ["/bin/sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh", *argv]

    def usage_seconds(self) -> float:
        if self.v1:
            return int((self.path / "cpuacct.usage").read_text()) / 1e9
        for line in (self.path / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
        raise BenchError(f"no usage_usec in {self.path}/cpu.stat")

    def pids(self) -> list[int]:
        try:
            return [int(x) for x in (self.path / "cgroup.procs").read_text().split()]
        except FileNotFoundError:
            return []

    def pss_kib(self, field: str = "Pss") -> int:
        """Sum of PSS over every process of the server (so shared pages count once).

        ``field="Pss_Anon"`` counts anonymous memory only (heap, stacks, buffers), which, unlike
        library pages, other processes on the machine cannot change the share of.
        """
        total = 0
        prefix = field + ":"
        for pid in self.pids():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError, PermissionError):
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith(prefix):
                        total += int(line.split()[1])
        return total

    def kill_all(self, sig: int = 9) -> None:
        """Signal the processes the benchmark started into this cgroup (and only those)."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def close(self) -> None:
        deadline = time.monotonic() + 10
        while self.pids() and time.monotonic() < deadline:
            self.kill_all()
            time.sleep(0.1)
        with contextlib.suppress(OSError):
            self.path.rmdir()


# -- PKI ----------------------------------------------------------------------------------------
def make_pki(directory: Path) -> dict[str, Path]:
    """The tests' CA (ECDSA P-256 root + intermediate) and a 127.0.0.1/localhost server
    certificate, as PEM files; ``chain`` is the intermediate, ``ca`` the root clients trust."""
    ca = TestCA("ftpsbench")
    issued = ca.issue("localhost", days=2)
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "ca": directory / "ca.pem",
        "cert": directory / "cert.pem",
        "key": directory / "key.pem",
        "chain": directory / "chain.pem",
        "fullchain": directory / "fullchain.pem",
    }
    ca.write_root(files["ca"])
    files["chain"].write_bytes(cert_pem(ca.intermediate))
    files["cert"].write_bytes(cert_pem(issued.cert))
    files["fullchain"].write_bytes(cert_pem(issued.cert) + cert_pem(ca.intermediate))
    files["key"].write_bytes(key_pem(issued))
    for f in files.values():
        f.chmod(0o644)
    files["key"].chmod(0o600)
    return files


# -- libcrypt (yescrypt, what PAM verifies against /etc/shadow) ---------------------------------
def _libcrypt() -> ctypes.CDLL:
    name = ctypes.util.find_library("crypt")
    if not name:
        raise BenchError("libcrypt not found (needed to hash the vsftpd user's password)")
    lib = ctypes.CDLL(name)
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    return lib


def yescrypt_hash(password: str) -> str:
    """A yescrypt hash with libxcrypt's default cost, as Debian 12's PAM (pam_unix yescrypt) makes."""
    lib = _libcrypt()
    salt = lib.crypt_gensalt(b"$y$", 0, None, 0)
    if not salt:
        raise BenchError("libcrypt cannot make a yescrypt salt")
    out = lib.crypt(password.encode(), salt)
    if not out or not out.startswith(b"$y$"):
        raise BenchError("libcrypt cannot compute yescrypt")
    return out.decode()


def median_seconds(fn, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def crypt_cost(password: str, encoded: str) -> float:
    lib = _libcrypt()
    return median_seconds(lambda: lib.crypt(password.encode(), encoded.encode()))


# -- vsftpd -------------------------------------------------------------------------------------
def ensure_vsftpd() -> str:
    """vsftpd's path, installing Debian's package first if missing; never left running as a service."""
    path = shutil.which("vsftpd") or ("/usr/sbin/vsftpd" if Path("/usr/sbin/vsftpd").exists() else None)
    if path:
        return path
    if os.geteuid() != 0:
        raise BenchError("vsftpd is not installed and installing it needs root")
    print("bench: installing vsftpd (benchmark reference only; its service is kept from starting)")
    created_policy = False
    if not POLICY_RC_D.exists():
        # invoke-rc.d asks policy-rc.d; 101 = "action forbidden", so the package's postinst
        # does not start a system vsftpd on port 21.
        POLICY_RC_D.write_text(
            "#!/bin/sh\n# ftpsbench: keep services from starting during install\nexit 101\n"
        )
        POLICY_RC_D.chmod(0o755)
        created_policy = True
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", "vsftpd"], env=env)
    finally:
        if created_policy:
            POLICY_RC_D.unlink()
    # Belt and braces on hosts with a service manager: never leave a system vsftpd enabled.
    if shutil.which("systemctl") and Path("/run/systemd/system").exists():
        subprocess.run(["systemctl", "disable", "--now", "vsftpd"], capture_output=True, check=False)
    elif shutil.which("update-rc.d"):
        subprocess.run(["update-rc.d", "vsftpd", "disable"], capture_output=True, check=False)
    return "/usr/sbin/vsftpd"


# -- the environment ----------------------------------------------------------------------------
@dataclass
class BenchEnv:
    """tmpfs + PKI + a local user with a yescrypt password; :meth:`close` removes all of it."""

    mountpoint: Path = Path("/mnt/ftpsbench")
    tmpfs_size: str = "6g"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    user: str = BENCH_USER
    created_user: bool = False
    mounted: bool = False
    pki: dict[str, Path] = field(default_factory=dict)
    shadow_hash: str = ""

    def open(self) -> BenchEnv:
        if os.geteuid() != 0:
            raise BenchError("the benchmark needs root (tmpfs mount, cgroups, a local user for vsftpd)")
        cpuacct_root()
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        if os.path.ismount(self.mountpoint):
            raise BenchError(f"{self.mountpoint} is already mounted (another bench running? umount it)")
        run(
            [
                "mount",
                "-t",
                "tmpfs",
                "-o",
                f"size={self.tmpfs_size},mode=0755",
                "ftpsbench",
                str(self.mountpoint),
            ]
        )
        self.mounted = True
        self.pki = make_pki(self.mountpoint / "pki")
        return self

    @property
    def data(self) -> Path:
        return self.mountpoint / "data"

    def home(self, server: str) -> Path:
        return self.mountpoint / "home" / server

    def ensure_user(self) -> None:
        """A local user for vsftpd (PAM) and ProFTPD, password hashed with yescrypt at Debian's
        default cost; once per run (both servers get the same hash)."""
        if self.shadow_hash:
            return
        try:
            run(["id", self.user])
        except subprocess.CalledProcessError:
            run(["useradd", "--no-create-home", "--home-dir", str(self.home("vsftpd")), "--shell", "/bin/sh",
                 self.user])  # fmt: skip
            self.created_user = True
        run(["usermod", "--home", str(self.home("vsftpd")), self.user])
        self.shadow_hash = yescrypt_hash(self.password)
        run(["chpasswd", "--encrypted"], input=f"{self.user}:{self.shadow_hash}\n")

    def close(self) -> None:
        if self.created_user:
            subprocess.run(["userdel", self.user], capture_output=True, check=False)
        if self.mounted:
            for _ in range(20):
                if (
                    subprocess.run(
                        ["umount", str(self.mountpoint)], capture_output=True, check=False
                    ).returncode
                    == 0
                ):
                    break
                time.sleep(0.5)
            else:
                subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True, check=False)
            self.mounted = False
            with contextlib.suppress(OSError):
                self.mountpoint.rmdir()


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def make_random_file(path: Path, size: int) -> str:
    """A file of incompressible bytes; returns its sha256."""
    h = hashlib.sha256()
    chunk = 1 << 20
    with path.open("wb") as f:
        left = size
        while left:
            block = os.urandom(min(chunk, left))
            h.update(block)
            f.write(block)
            left -= len(block)
    path.chmod(0o644)
    return h.hexdigest()


def machine_facts() -> dict[str, str]:
    facts = {
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cores": str(os.cpu_count()),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
        facts["memory"] = f"{int(mem) // 1024} MiB"
    with contextlib.suppress(OSError, FileNotFoundError, subprocess.CalledProcessError):
        facts["os"] = run(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]).stdout.strip()
        facts["openssl"] = run(["openssl", "version"]).stdout.strip()
        facts["curl"] = run(["curl", "--version"]).stdout.split("\n", 1)[0]
    with contextlib.suppress(Exception):
        import OpenSSL
        import pyftpdlib

        facts["pyftpdlib"] = pyftpdlib.__ver__
        facts["pyOpenSSL"] = OpenSSL.__version__
    with contextlib.suppress(OSError, FileNotFoundError, subprocess.CalledProcessError):
        facts["vsftpd"] = run(["dpkg-query", "-W", "-f", "${Version}", "vsftpd"]).stdout.strip()
    return facts


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"
