"""The benchmark's ProFTPD peer and floor rows (tests/bench/proftpd.py, floor.py, report.py): the
parsing of what apt-cache and openssl print, the generated configuration, the distances and the
report sections. Nothing is run or timed here."""

from __future__ import annotations

import argparse
import itertools
import re
import string
from pathlib import Path

import pytest

from tests.bench import floor, proftpd
from tests.bench.env import BenchError
from tests.bench.floor import Floors, distances, parse_speed, s_server_argv
from tests.bench.proftpd import (
    PROFTPD_CONF,
    ProftpdUnavailable,
    group_line,
    parse_apt_depends,
    passwd_line,
    proftpd_conf,
)
from tests.bench.report import floors_section, render, vs_vsftpd_table
from tests.bench.servers import PORTS, SERVERS, Proftpd, Server

# `openssl speed` as OpenSSL 3.0 prints it (stdout), one block size.
SPEED_AES = """\
The 'numbers' are in 1000s of bytes per second processed.
type          16384 bytes
AES-256-GCM    5325123.58k
"""
SPEED_CHACHA = """\
CPUINFO: OPENSSL_ia32cap=0xfffa3203078bffff:0x405fc6f1bf07ab
The 'numbers' are in 1000s of bytes per second processed.
type          16384 bytes
ChaCha20-Poly1305  4963150.51k
"""

APT_DEPENDS = """\
proftpd-core
  Depends: adduser
 |Depends: debconf
  Depends: <debconf-2.0>
    cdebconf
    debconf
  Depends: libhiredis0.14
  PreDepends: libc6
  Depends: libmemcached11
  Recommends: openbsd-inetd
  Conflicts: <ftp-server>
proftpd-mod-crypto
  Depends: libc6
  Depends: libssl3
"""

VALUES = {
    "host": "127.0.0.1",
    "port": 20521,
    "pasv_lo": 30000,
    "pasv_hi": 31999,
    "run_user": "nobody",
    "run_group": "nogroup",
    "workdir": Path("/mnt/ftpsbench/srv/proftpd"),
    "modules": Path("/mnt/ftpsbench/srv/proftpd/root/usr/lib/proftpd"),
    "passwd": Path("/mnt/ftpsbench/srv/proftpd/ftpd.passwd"),
    "group": Path("/mnt/ftpsbench/srv/proftpd/ftpd.group"),
    "cert": Path("/pki/cert.pem"),
    "key": Path("/pki/key.pem"),
    "chain": Path("/pki/chain.pem"),
}


# -- openssl speed ------------------------------------------------------------------------------
def test_parse_speed_reads_mb_per_second_for_each_cipher():
    assert parse_speed(SPEED_AES, "aes-256-gcm") == pytest.approx(5325.12358)
    assert parse_speed(SPEED_CHACHA, "chacha20-poly1305") == pytest.approx(4963.15051)


@pytest.mark.parametrize(
    "output",
    [SPEED_AES, "", "type 16384 bytes\nChaCha20-Poly1305  n/ak\n", "ChaCha20-Poly1305 4963150.51\n"],
    ids=["other-cipher", "empty", "not-a-number", "no-k-suffix"],
)
def test_parse_speed_refuses_output_without_the_cipher_figure(output):
    with pytest.raises(BenchError, match="chacha20-poly1305"):
        parse_speed(output, "chacha20-poly1305")


def test_s_server_serves_tls13_with_the_bench_certificate_on_loopback_for_n_connections():
    pki = {k: Path(f"/p/{k}.pem") for k in ("cert", "key", "chain", "ca")}
    argv = s_server_argv(pki, 20621, 902)
    assert argv[:2] == ["openssl", "s_server"]
    pairs = dict(itertools.pairwise(argv))
    assert pairs["-accept"] == "127.0.0.1:20621"
    assert pairs["-naccept"] == "902"
    assert (pairs["-cert"], pairs["-key"], pairs["-cert_chain"]) == (
        "/p/cert.pem",
        "/p/key.pem",
        "/p/chain.pem",
    )
    assert "-tls1_3" in argv and "-quiet" in argv


# -- distances to the floors --------------------------------------------------------------------------
def test_distances_divide_by_the_floors_and_mark_missing_figures():
    floors = Floors(0.25, (0.24, 0.27), 900, 900, {"aes-256-gcm": 5000.0, "chacha20-poly1305": 4000.0})
    aes_s_per_gib = (1 << 30) / 5e9  # 0.2147 s
    med = {
        ("small_cpu", "py", "ftpsd"): 0.85,
        ("dl", "py", "ftpsd"): 1150.0,
        ("dl_cpu", "py", "ftpsd"): aes_s_per_gib * 3,
        ("small_cpu", "py", "proftpd"): 0.5,
        ("small_cpu", "curl", "vsftpd"): 9.0,  # curl figures are not used
    }
    assert distances(med, ["ftpsd", "proftpd", "vsftpd"], floors) == [
        ["ftpsd", "3.4x", "23%", "3.0x"],
        ["proftpd", "2.0x", "—", "—"],
        ["vsftpd", "—", "—", "—"],
    ]


def test_distances_without_a_ceiling_show_dashes_not_errors():
    floors = Floors(0.0, (0.0, 0.0), 0, 0, {})
    med = {("small_cpu", "py", "ftpsd"): 0.85, ("dl", "py", "ftpsd"): 1000.0, ("dl_cpu", "py", "ftpsd"): 0.5}
    assert distances(med, ["ftpsd"], floors) == [["ftpsd", "—", "—", "—"]]


# -- ProFTPD: fetching --------------------------------------------------------------------------------
def test_parse_apt_depends_takes_depends_and_predepends_only_without_virtual_packages():
    assert parse_apt_depends(APT_DEPENDS) == [
        "adduser", "debconf", "libhiredis0.14", "libc6", "libmemcached11", "libssl3",
    ]  # fmt: skip


def test_packages_to_fetch_follows_missing_libraries_only(monkeypatch):
    depends = {
        ("proftpd-core", "proftpd-mod-crypto"): APT_DEPENDS,
        ("libhiredis0.14", "libmemcached11"): "libmemcached11\n  Depends: libhashkit2\n  Depends: libc6\n",
        ("libhashkit2",): "libhashkit2\n  Depends: libc6\n",
    }
    calls = []

    def fake_run(argv, cwd=None, env=None):
        names = tuple(a for a in argv[2:] if not a.startswith("--"))
        calls.append(names)
        return depends[names]

    monkeypatch.setattr(proftpd, "_run", fake_run)
    monkeypatch.setattr(proftpd, "_installed", lambda name: name in ("libc6", "libssl3", "adduser"))
    assert proftpd.packages_to_fetch() == [
        "proftpd-core", "proftpd-mod-crypto", "libhiredis0.14", "libmemcached11", "libhashkit2",
    ]  # fmt: skip
    assert len(calls) == 3  # the last level adds nothing, so the walk stops


def test_fetch_uses_the_cache_without_network(monkeypatch, tmp_path):
    for name in ("proftpd-core_1.3.8_amd64.deb", "libhashkit2_1.1.4_amd64.deb"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setattr(proftpd, "_run", lambda *a, **k: pytest.fail("no command may run"))
    assert [d.name for d in proftpd.fetch_debs(tmp_path)] == [
        "libhashkit2_1.1.4_amd64.deb", "proftpd-core_1.3.8_amd64.deb",
    ]  # fmt: skip


def test_fetch_without_apt_or_network_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr(proftpd.shutil, "which", lambda name: None)
    with pytest.raises(ProftpdUnavailable, match="no apt-get"):
        proftpd.fetch_debs(tmp_path)

    monkeypatch.setattr(proftpd.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(proftpd, "packages_to_fetch", lambda: ["proftpd-core"])

    class Failed:
        returncode = 100
        stdout = ""
        stderr = "W: Some index files failed\nE: Failed to fetch http://deb.debian.org/... Temporary failure"

    monkeypatch.setattr(proftpd.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(ProftpdUnavailable, match=r"apt-get download .* failed: E: Failed to fetch"):
        proftpd.fetch_debs(tmp_path / "cache")


def test_unobtainable_proftpd_becomes_a_skip_with_the_reason(monkeypatch, tmp_path):
    def unavailable(root):
        raise ProftpdUnavailable("`apt-get download ...` failed: E: Temporary failure resolving")

    monkeypatch.setattr(proftpd, "obtain", unavailable)
    server = Proftpd.__new__(Proftpd)
    server.workdir = tmp_path
    with pytest.raises(Server.Unavailable, match=r"ProFTPD column skipped: .*Temporary failure resolving"):
        server.obtain()
    assert issubclass(Server.Unavailable, BenchError)


# -- ProFTPD: configuration -----------------------------------------------------------------------------
def test_proftpd_conf_requires_tls_and_session_reuse_on_loopback():
    conf = proftpd_conf(**VALUES)
    directives = {}
    for line in conf.splitlines():
        words = line.strip().split(None, 1)
        if words and not words[0].startswith(("#", "<")):
            directives[words[0]] = words[1] if len(words) > 1 else ""
    assert directives["TLSEngine"] == "on"
    assert directives["TLSRequired"] == "on"
    assert directives["TLSProtocol"] == "TLSv1.2 TLSv1.3"
    # Reuse is required unless TLSOptions says NoSessionReuseRequired; no TLSOptions at all.
    assert "NoSessionReuseRequired" not in re.sub(r"#.*", "", conf)
    assert "TLSOptions" not in directives
    assert directives["DefaultAddress"] == "127.0.0.1"
    assert directives["SocketBindTight"] == "on"
    assert directives["Port"] == "20521"
    assert directives["PassivePorts"] == "30000 31999"
    assert directives["AuthPAM"] == "off"
    assert directives["AuthOrder"] == "mod_auth_file.c"
    assert directives["AuthUserFile"] == str(VALUES["passwd"])
    assert directives["DefaultRoot"] == "~"
    assert directives["TLSECCertificateFile"] == "/pki/cert.pem"
    assert directives["TLSECCertificateKeyFile"] == "/pki/key.pem"
    assert directives["TLSCertificateChainFile"] == "/pki/chain.pem"
    assert directives["ModulePath"] == str(VALUES["modules"])
    assert directives["LoadModule"] == "mod_tls.c"
    for name in ("PidFile", "ScoreboardFile", "SystemLog"):
        assert directives[name].startswith(str(VALUES["workdir"]) + "/"), name


def test_proftpd_conf_needs_every_value():
    fields = {f for _, f, _, _ in string.Formatter().parse(PROFTPD_CONF) if f}
    assert fields == set(VALUES)
    with pytest.raises(KeyError):
        proftpd_conf(**{k: v for k, v in VALUES.items() if k != "cert"})


def test_passwd_and_group_lines():
    line = passwd_line("ftpsbench", "$y$j9T$salt$hash", 1001, 1002, Path("/mnt/ftpsbench/home/proftpd"))
    assert line == "ftpsbench:$y$j9T$salt$hash:1001:1002::/mnt/ftpsbench/home/proftpd:/bin/false\n"
    assert group_line("ftpsbench", 1002, ["ftpsbench"]) == "ftpsbench:x:1002:ftpsbench\n"


@pytest.mark.parametrize(
    ("user", "hashed", "home"),
    [("a:b", "$y$x", "/h"), ("u", "$y$x\nroot::0:0::/:/bin/sh", "/h"), ("u", "$y$x", "/h:/x")],
)
def test_passwd_line_refuses_field_separators(user, hashed, home):
    with pytest.raises(ValueError, match="may not contain"):
        passwd_line(user, hashed, 1, 1, Path(home))


def test_each_server_has_its_own_ports_outside_the_ephemeral_range():
    assert set(PORTS) == set(SERVERS)
    taken = []
    for control, pasv in PORTS.values():
        lo, hi = pasv or (control, control)
        assert hi < 32768 or lo > 60999, (lo, hi)  # ip_local_port_range here: 32768-60999
        taken.append((control, control))
        if pasv:
            taken.append(pasv)
    taken.sort()
    assert all(a[1] < b[0] for a, b in itertools.pairwise(taken)), taken
    assert floor.FLOOR_PORT not in {c for c, _ in PORTS.values()}


# -- report -------------------------------------------------------------------------------------------
def _args(servers):
    return argparse.Namespace(
        servers=servers, size_mib=1024, small_count=500, small_size=4096, sessions=50, session_mib=32,
        idle=50, baseline="", note="",
    )  # fmt: skip


def _result(servers, skipped=None):
    values = {
        ("small_cpu", "py", "vsftpd"): [1.0, 0.9, 1.1],
        ("small_cpu", "py", "ftpsd"): [0.8],
        ("small_cpu", "py", "proftpd"): [0.5],
        ("dl", "py", "vsftpd"): [1000.0],
        ("dl", "py", "ftpsd"): [1200.0],
    }
    return {
        "args": _args(servers),
        "values": {k: v for k, v in values.items() if k[2] in servers},
        "errors": {},
        "facts": {"load average at start": "1.00 1.00 1.00"},
        "floors": Floors(0.25, (0.24, 0.26), 900, 900, {"aes-256-gcm": 5000.0, "chacha20-poly1305": 4000.0}),
        "skipped": skipped or {},
        "servers": {
            s: {"hash": "h", "login_cost": 0.01, "version": "1.3.8" if s == "proftpd" else ""}
            for s in servers
        },
        "reps": 3,
        "elapsed": 60.0,
    }


def test_ratios_to_vsftpd_are_side_by_side_per_server():
    servers = ["ftpsd", "vsftpd", "proftpd"]
    r = _result(servers)
    med = {k: sorted(v)[len(v) // 2] for k, v in r["values"].items()}
    table = vs_vsftpd_table(r["args"], med, servers)
    assert table[2] == "| Measure | vsftpd | unit | ftpsd | proftpd |"
    assert "| 1 GiB download ↑ | 1000 | MB/s | 1.20x | — |" in table
    assert "| 500 x 4096 B files, one session: server CPU ↓ | 1.00 | ms/file | 0.80x | 0.50x |" in table
    assert vs_vsftpd_table(r["args"], med, ["ftpsd", "proftpd"]) == []


def test_floors_section_lists_floor_ceilings_distances_and_versions():
    servers = ["ftpsd", "vsftpd", "proftpd"]
    r = _result(servers)
    med = {k: sorted(v)[len(v) // 2] for k, v in r["values"].items()}
    text = "\n".join(floors_section(r, med, servers))
    assert "**0.250 ms** of s_server CPU per connection" in text
    assert "900 of 900 resumed" in text
    assert "`openssl speed -evp aes-256-gcm -bytes 16384`: **5000 MB/s**" in text
    assert "`openssl speed -evp chacha20-poly1305 -bytes 16384`: **4000 MB/s**" in text
    assert "| ftpsd | 3.2x | 24% | — |" in text
    assert "| proftpd | 2.0x | — | — |" in text
    assert "- proftpd (1.3.8): password hash h" in text


def test_report_names_a_skipped_server_and_why():
    r = _result(["ftpsd", "vsftpd"], skipped={"proftpd": "ProFTPD column skipped: no apt-get here"})
    text = render(r, "python -m tests.bench")
    assert "**proftpd not measured in this run**: ProFTPD column skipped: no apt-get here" in text
    assert "| Measure | Client | ftpsd | vsftpd | unit | ftpsd/vsftpd | ftpsd target |" in text


def test_session_setup_rows_show_server_cpu_and_the_part_besides_the_hash_against_the_goal():
    servers = ["ftpsd", "vsftpd"]
    r = _result(servers)
    r["values"].update({
        ("setup_cpu", "py", "ftpsd"): [27.2], ("setup_cpu", "py", "vsftpd"): [35.7],
        ("setup_cpu_nohash", "py", "ftpsd"): [4.0], ("setup_cpu_nohash", "py", "vsftpd"): [20.4],
    })  # fmt: skip
    text = render(r, "python -m tests.bench")
    assert "| session setup: server CPU ↓ | Python | 27.2 | 35.7 | ms/session | 0.76x |" in text
    row = next(line for line in text.splitlines() if "besides the password hash ↓ | Python" in line)
    assert row.endswith("| 4.0 | 20.4 | ms/session | 0.20x | <= 2: **NOT met** |"), row
    r["values"][("setup_cpu_nohash", "py", "ftpsd")] = [1.3]
    assert "0.06x | <= 2: **met** |" in render(r, "python -m tests.bench")
