"""ProFTPD for the benchmark: Debian's packages unpacked (never installed), and its configuration.

Debian's ``proftpd-core`` and ``vsftpd`` conflict (both provide ``ftp-server``), so ProFTPD is not
installed: ``apt-get download`` fetches ``proftpd-core``, ``proftpd-mod-crypto`` (it holds
``mod_tls.so``) and the shared-library packages among their dependencies that the machine lacks;
the .debs are kept in ``.cache/bench/debs/`` of the checkout (a later run needs no network) and
``dpkg -x`` unpacks them into the run's work directory on the benchmark's tmpfs. The binary
runs from there with ``LD_LIBRARY_PATH`` pointing at the unpacked libraries and ``ModulePath``
at the unpacked modules; no file outside the work directory and the cache is written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.paths import ROOT as REPO

DEB_CACHE = REPO / ".cache" / "bench" / "debs"
PACKAGES = ("proftpd-core", "proftpd-mod-crypto")
MULTIARCH_LIB = "usr/lib/x86_64-linux-gnu"
MAX_DEPTH = 4  # dependency levels followed for missing libraries (bounded; 2 suffice on Debian 12)


class ProftpdUnavailable(RuntimeError):
    """ProFTPD cannot be obtained or run here (offline, no apt, missing libraries); says why."""


def parse_apt_depends(text: str) -> list[str]:
    """Package names from ``apt-cache depends --no-recommends ...`` output: the Depends and
    PreDepends lines (first alternative and others alike), without virtual packages (``<name>``).
    """
    names: list[str] = []
    for line in text.splitlines():
        kind, sep, name = line.strip().lstrip("|").partition(":")
        if not sep or kind not in ("Depends", "PreDepends"):
            continue
        name = name.strip()
        if name and not name.startswith("<") and name not in names:
            names.append(name)
    return names


def _installed(package: str) -> bool:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Status}", package], capture_output=True, text=True, check=False
    )
    return out.returncode == 0 and out.stdout.endswith("install ok installed")


def _run(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    try:
        out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProftpdUnavailable(f"{argv[0]}: {exc}") from exc
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise ProftpdUnavailable(f"`{' '.join(argv)}` failed: {last}")
    return out.stdout


def packages_to_fetch() -> list[str]:
    """PACKAGES plus the library packages (``lib*``) they need that are not installed here."""
    wanted = list(PACKAGES)
    frontier = list(PACKAGES)
    for _ in range(MAX_DEPTH):
        if not frontier:
            break
        out = _run(["apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
                    "--no-breaks", "--no-replaces", "--no-enhances", *frontier])  # fmt: skip
        frontier = [
            name
            for name in parse_apt_depends(out)
            if name.startswith("lib") and name not in wanted and not _installed(name)
        ]
        wanted += frontier
    return wanted


def fetch_debs(cache: Path = DEB_CACHE) -> list[Path]:
    """The .debs in the cache, downloaded first when proftpd-core is not among them."""
    debs = sorted(cache.glob("*.deb"))
    if any(d.name.startswith("proftpd-core_") for d in debs):
        return debs
    if not shutil.which("apt-get"):
        raise ProftpdUnavailable("no apt-get here to download Debian's proftpd-core")
    cache.mkdir(parents=True, exist_ok=True)
    print("bench: downloading ProFTPD (proftpd-core, proftpd-mod-crypto and missing libraries) into", cache)
    # root's apt drops to the _apt user for downloads; it cannot write into a root-owned cache.
    _run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", *packages_to_fetch()], cwd=cache)
    return sorted(cache.glob("*.deb"))


def unpack(debs: list[Path], root: Path) -> dict[str, Path]:
    """``dpkg -x`` every deb into root; the paths the server needs, checked to load."""
    root.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        _run(["dpkg", "-x", str(deb), str(root)])
    paths = {
        "binary": root / "usr/sbin/proftpd",
        "modules": root / "usr/lib/proftpd",
        "libs": root / MULTIARCH_LIB,
    }
    if not paths["binary"].exists():
        raise ProftpdUnavailable(f"{paths['binary']} missing after unpacking {len(debs)} packages")
    if not (paths["modules"] / "mod_tls.so").exists():
        raise ProftpdUnavailable("mod_tls.so missing after unpacking (proftpd-mod-crypto not fetched?)")
    env = library_env(paths)
    missing = sorted(
        {
            line.split("=>")[0].strip()
            for target in (paths["binary"], paths["modules"] / "mod_tls.so")
            for line in _run(["ldd", str(target)], env=env).splitlines()
            if "not found" in line
        }
    )
    if missing:
        raise ProftpdUnavailable("unpacked ProFTPD lacks libraries: " + ", ".join(missing))
    return paths


def library_env(paths: dict[str, Path]) -> dict[str, str]:
    """The environment the unpacked binary runs in (its libraries first on the loader's path)."""
    return dict(os.environ, LD_LIBRARY_PATH=str(paths["libs"]))


def deb_version(debs: list[Path], package: str = "proftpd-core") -> str:
    for deb in debs:
        if deb.name.startswith(package + "_"):
            return _run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
    return "?"


def obtain(root: Path, cache: Path = DEB_CACHE) -> tuple[dict[str, Path], str]:
    """Unpacked ProFTPD under root and its Debian version; :class:`ProftpdUnavailable` if not."""
    debs = fetch_debs(cache)
    return unpack(debs, root), deb_version(debs)


# -- configuration ------------------------------------------------------------------------------
PROFTPD_CONF = """\
# ftpsbench: ProFTPD configured like ftpsd's defaults (TLS required, session reuse required).
ServerType standalone
ServerName "ftpsbench"
DefaultAddress {host}
SocketBindTight on
UseIPv6 off
Port {port}
PassivePorts {pasv_lo} {pasv_hi}
MaxInstances none
MaxClients none
MaxClientsPerHost none
User {run_user}
Group {run_group}
Umask 022
AllowOverwrite on
PidFile {workdir}/proftpd.pid
ScoreboardFile {workdir}/proftpd.scoreboard
SystemLog {workdir}/proftpd.log
TransferLog none
WtmpLog off
UseReverseDNS off
DelayEngine off
ModulePath {modules}
LoadModule mod_tls.c
AuthPAM off
AuthOrder mod_auth_file.c
AuthUserFile {passwd}
AuthGroupFile {group}
RequireValidShell off
DefaultRoot ~
TimeoutIdle 600
TimeoutNoTransfer 600
<IfModule mod_tls.c>
  TLSEngine on
  TLSRequired on
  TLSProtocol TLSv1.2 TLSv1.3
  TLSECCertificateFile {cert}
  TLSECCertificateKeyFile {key}
  TLSCertificateChainFile {chain}
  TLSCipherSuite ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305
  TLSVerifyClient off
  TLSRenegotiate none
  # No "TLSOptions NoSessionReuseRequired": data connections must resume the control session.
</IfModule>
"""


def proftpd_conf(**values: object) -> str:
    """The configuration text; every placeholder of PROFTPD_CONF must be given (KeyError if not)."""
    return PROFTPD_CONF.format(**values)


def passwd_line(user: str, crypt_hash: str, uid: int, gid: int, home: Path) -> str:
    """One ``AuthUserFile`` line (the /etc/passwd format, the hash in the password field)."""
    for field in (user, crypt_hash, str(home)):
        if ":" in field or "\n" in field:
            raise ValueError(f"AuthUserFile field may not contain ':' or a newline: {field!r}")
    return f"{user}:{crypt_hash}:{uid}:{gid}::{home}:/bin/false\n"


def group_line(group: str, gid: int, members: list[str]) -> str:
    return f"{group}:x:{gid}:{','.join(members)}\n"
