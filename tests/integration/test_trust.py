"""``ftps-trust`` against real servers on 127.0.0.1: scripted runs, and a person at a terminal (tmux)."""

from __future__ import annotations

import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from ftpskit_common import trust
from ftpskit_common.x509 import (
    parse_certificate,
)
from tests.certs import make_ca, make_leaf
from tests.client_servers import serving

FTPS_TRUST = str(pathlib.Path(sys.executable).parent / "ftps-trust")


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    if "--system-pin-file" not in argv:  # hermetic: never this machine's /etc/ftps-trust
        argv = (*argv, "--system-pin-file", "")
    code = trust.main(list(argv), stdin=io.StringIO(""), stdout=out)
    return code, out.getvalue()


@pytest.fixture
def certs(tmp_path) -> dict:
    ca = make_ca("fleet CA")
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    issued = {
        "first": make_leaf(None, cn="first"),
        "second": make_leaf(None, cn="second"),
        "ca_signed": make_leaf(ca),
    }
    files = {name: i.write(tmp_path, name) for name, i in issued.items()}
    fields = {name: parse_certificate(i.der) for name, i in issued.items()}
    return {
        "ca": str(tmp_path / "ca.pem"),
        "files": files,
        "fields": fields,
        "pins": str(tmp_path / "pins.json"),
    }


def test_ca_signed_server_is_trusted_and_nothing_is_saved(certs, tmp_path) -> None:
    with serving(tmp_path / "root", *certs["files"]["ca_signed"]) as srv:
        code, out = run(f"127.0.0.1:{srv.port}", "--ca", certs["ca"], "--pin-file", certs["pins"])
    assert code == trust.EXIT_TRUSTED
    assert f"chains to the CA file {certs['ca']} and is valid for 127.0.0.1" in out
    assert certs["fields"]["ca_signed"]["fingerprint_sha256"] in out
    assert not os.path.exists(certs["pins"])


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_scripted_accept_remember_and_refuse_a_change(certs, tmp_path, implicit: bool) -> None:
    mode = "implicit" if implicit else "explicit"
    flags = ["--pin-file", certs["pins"]] + (["--implicit"] if implicit else [])
    with serving(tmp_path / "root", *certs["files"]["first"], tls=mode) as srv:
        target = f"127.0.0.1:{srv.port}"
        code, out = run(target, *flags)
        assert code == trust.EXIT_NOT_TRUSTED, out
        assert "does NOT verify against the system's trusted CAs: certificate from an unknown CA" in out
        assert "No terminal to ask" in out
        assert not os.path.exists(certs["pins"])

        code, out = run(target, *flags, "--yes")
        assert code == trust.EXIT_TRUSTED, out
        saved = json.loads(pathlib.Path(certs["pins"]).read_text())["servers"][f"127.0.0.1:{srv.port}"]
        assert saved["fingerprint_sha256"] == certs["fields"]["first"]["fingerprint_sha256"]

        code, out = run(target, *flags)
        assert code == trust.EXIT_TRUSTED
        assert "It matches the certificate saved for 127.0.0.1:" in out

        srv.use_certificate(*certs["files"]["second"])
        for extra in ([], ["--yes"]):  # --yes trusts unknown servers, never a changed certificate
            code, out = run(target, *flags, *extra)
            assert code == trust.EXIT_CHANGED, out
            assert "WARNING: THE SERVER'S CERTIFICATE HAS CHANGED" in out
            assert "CN=first" in out and "CN=second" in out
        assert (
            json.loads(pathlib.Path(certs["pins"]).read_text())["servers"][f"127.0.0.1:{srv.port}"] == saved
        )

        code, out = run(target, *flags, "--accept-changed")
        assert code == trust.EXIT_TRUSTED
        new = json.loads(pathlib.Path(certs["pins"]).read_text())["servers"][f"127.0.0.1:{srv.port}"]
        assert new["fingerprint_sha256"] == certs["fields"]["second"]["fingerprint_sha256"]

        code, out = run(target, *flags, "--forget")
        assert code == trust.EXIT_TRUSTED and "pin removed" in out
        assert json.loads(pathlib.Path(certs["pins"]).read_text())["servers"] == {}


def test_fleet_pins_are_honoured_and_never_overridden(certs, tmp_path) -> None:
    """The role's read-only pin file: a match is trusted; a change is refused, even with
    --accept-changed, because only the fleet's administrators may rotate that pin."""
    from ftpskit_common.client import (
        PinStore,
    )

    system = PinStore(str(tmp_path / "etc" / "known_servers.json"))
    with serving(tmp_path / "root", *certs["files"]["first"]) as srv:
        entry = system.put(
            "127.0.0.1", srv.port, certs["fields"]["first"], source="ftps_pki_certificate of ftp1"
        )
        del entry["accepted_at"]
        system.save()
        flags = ["--pin-file", certs["pins"], "--system-pin-file", system.path]
        code, out = run(f"127.0.0.1:{srv.port}", *flags)
        assert code == trust.EXIT_TRUSTED, out
        assert "(from ftps_pki_certificate of ftp1)" in out

        srv.use_certificate(*certs["files"]["second"])
        code, out = run(f"127.0.0.1:{srv.port}", *flags, "--accept-changed", "--yes")
        assert code == trust.EXIT_CHANGED, out
        assert "WARNING: THE SERVER'S CERTIFICATE HAS CHANGED" in out
        assert f"pinned by the fleet in {system.path}" in out
        assert not os.path.exists(certs["pins"])


def test_a_fleet_pin_binds_however_its_key_is_spelled(certs, tmp_path) -> None:
    """The role's file spells a key its own way (an inventory name in capitals, with the root's
    trailing dot): the pin still binds. Before, ftps-trust found no entry, and a replaced
    certificate that a trusted CA signed was trusted: the fleet's pin silently skipped."""
    ca = make_ca("fleet CA 2")
    (tmp_path / "ca2.pem").write_bytes(ca.pem)
    pinned, impostor = make_leaf(ca), make_leaf(ca)
    pinned_files = pinned.write(tmp_path, "pinned")
    entry = {"fingerprint_sha256": parse_certificate(pinned.der)["fingerprint_sha256"], "source": "test"}
    system = tmp_path / "etc" / "known_servers.json"
    system.parent.mkdir()
    with serving(tmp_path / "root", *pinned_files) as srv:
        system.write_text(json.dumps({"version": 1, "servers": {f"LocalHost.:{srv.port}": entry}}))
        flags = [
            "--ca",
            str(tmp_path / "ca2.pem"),
            "--pin-file",
            certs["pins"],
            "--system-pin-file",
            str(system),
        ]
        code, out = run(f"localhost:{srv.port}", *flags)
        assert code == trust.EXIT_TRUSTED, out
        assert "It matches the certificate saved" in out
        srv.use_certificate(*impostor.write(tmp_path, "impostor"))
        code, out = run(f"localhost:{srv.port}", *flags)
    assert code == trust.EXIT_CHANGED, out
    assert "WARNING: THE SERVER'S CERTIFICATE HAS CHANGED" in out


def test_a_hostile_certificate_cannot_draw_on_the_terminal(tmp_path) -> None:
    """Names with ANSI escapes, a line break faking ftps-trust's own "It matches" line and a
    right-to-left override reach the person escaped, every line printable."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    evil = "ftp1\x1b[2J\x1b]0;x\x07\nIt matches the saved\u202egpj.exe"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, evil, _validate=False)])
    issued = make_leaf(None, subject=name, sans=("DNS:a\x1b[31m.test", "IP:127.0.0.1"))
    with serving(tmp_path / "root", *issued.write(tmp_path, "evil")) as srv:
        code, out = run(f"127.0.0.1:{srv.port}", "--pin-file", str(tmp_path / "pins.json"))
    assert code == trust.EXIT_NOT_TRUSTED, out
    for line in out.splitlines():
        assert line.isprintable(), repr(line)
        assert not line.startswith("It matches"), out
    assert "CN=ftp1\\1B[2J" in out


def test_hostname_not_in_sans_is_named(certs, tmp_path) -> None:
    with serving(tmp_path / "root", *certs["files"]["ca_signed"]) as srv:
        code, out = run(
            f"127.0.0.1:{srv.port}",
            "--ca",
            certs["ca"],
            "--servername",
            "ftp.other.test",
            "--pin-file",
            certs["pins"],
        )
    assert code == trust.EXIT_NOT_TRUSTED
    assert "hostname mismatch: ftp.other.test is not in the certificate's SANs" in out
    assert "Note: ftp.other.test is not among the certificate's SANs." in out


def test_exit_codes_for_unreachable_plaintext_usage_and_pin_file(certs, tmp_path, capsys) -> None:
    from tests.integration.conftest import free_port

    code, _ = run(f"127.0.0.1:{free_port()}", "--pin-file", certs["pins"])
    assert code == trust.EXIT_UNREACHABLE
    assert "cannot reach an FTP server" in capsys.readouterr().err
    with serving(tmp_path / "root", tls="none") as srv:
        code, _ = run(f"127.0.0.1:{srv.port}", "--pin-file", certs["pins"])
    assert code == trust.EXIT_UNREACHABLE
    assert "server without TLS" in capsys.readouterr().err
    assert run("host:21", "--port", "990")[0] == trust.EXIT_USAGE
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert run("127.0.0.1:1", "--pin-file", str(bad))[0] == trust.EXIT_PIN_FILE


def test_explicit_against_ftpsds_implicit_port_says_use_implicit(server, tmp_path, capsys) -> None:
    """Issue 25: without --implicit, ftpsd's implicit port (silent until a ClientHello) is named
    as such instead of being waited out and called unreachable."""
    code, _ = run(
        f"127.0.0.1:{server.implicit_port}",
        "--ca",
        str(server.cafile),
        "--pin-file",
        str(tmp_path / "p.json"),
    )
    assert code == trust.EXIT_UNREACHABLE
    err = capsys.readouterr().err
    assert err == (
        f"ftps-trust: 127.0.0.1:{server.implicit_port} sent no FTP greeting but answers a TLS handshake:"
        " this looks like an implicit FTPS port: use --implicit\n"
    )
    # The same port with --implicit is trusted (the fixture's CA): the hint was right.
    code, out = run(
        f"127.0.0.1:{server.implicit_port}",
        "--implicit",
        "--ca",
        str(server.cafile),
        "--servername",
        "localhost",
        "--pin-file",
        str(tmp_path / "p.json"),
    )
    assert code == trust.EXIT_TRUSTED, out


def test_a_silent_server_is_not_called_implicit(tmp_path, capsys) -> None:
    """A port that accepts and says nothing (no greeting, no TLS) is reported as such."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        code, _ = run(f"127.0.0.1:{port}", "--timeout", "1", "--pin-file", str(tmp_path / "p.json"))
    assert code == trust.EXIT_UNREACHABLE
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port} accepted the connection but sent no FTP greeting" in err
    assert "implicit" not in err


def test_ipv6_addresses_are_printed_in_brackets(certs, capsys) -> None:
    """Issue 25: `[::1]:PORT`, never `::1:PORT`, in what ftps-trust says."""
    from tests.integration.conftest import free_port

    port = free_port()
    code, _ = run(f"[::1]:{port}", "--pin-file", certs["pins"])
    assert code == trust.EXIT_UNREACHABLE
    assert f"cannot reach an FTP server at [::1]:{port}:" in capsys.readouterr().err


def test_console_script_is_installed() -> None:
    proc = subprocess.run([FTPS_TRUST, "--help"], capture_output=True, text=True, check=False, timeout=30)
    assert proc.returncode == 0
    assert "exit codes:" in proc.stdout and "--pin-file" in proc.stdout


# -- a person at a real terminal ----------------------------------------------------------------


class Terminal:
    """A tmux session on its own server socket (never touches anyone else's tmux)."""

    def __init__(self, tmp: pathlib.Path) -> None:
        self.socket = f"ftps-trust-test-{uuid.uuid4().hex[:8]}"
        self.name = "t"
        env_home = tmp / "home"
        env_home.mkdir()
        self._tmux(
            "new-session", "-d", "-s", self.name, "-x", "200", "-y", "80",
            f"env -i PATH=/usr/bin:/bin HOME={env_home} TERM=xterm bash --norc --noprofile",
        )  # fmt: skip
        self.runs = 0
        self.socket_path = self._tmux("display-message", "-p", "#{socket_path}").strip()

    def _tmux(self, *args: str) -> str:
        proc = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30, check=True
        )
        return proc.stdout

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", self.name, "-l", text)
        self._tmux("send-keys", "-t", self.name, "Enter")

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-J", "-S", "-2000", "-t", self.name)

    def last_run(self) -> str:
        screen = self.screen()
        marker = f"=== run {self.runs} ==="
        return screen.rsplit(marker, 1)[-1] if marker in screen else ""

    def wait_for(self, needle: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.last_run()
            if needle in text:
                return text
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} never appeared on the terminal:\n{self.screen()[-6000:]}")

    def command(self, line: str) -> None:
        self.runs += 1
        # Quoted so that the typed command line never contains what the output lines contain.
        self.type(f'clear; echo "=== run" "{self.runs} ==="; {line}; echo "EXIT""=$?"')

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30, check=False
        )
        if self.socket_path:  # tmux leaves its socket file behind
            pathlib.Path(self.socket_path).unlink(missing_ok=True)


@pytest.fixture
def terminal(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (lab/host-packages.txt lists it; run make host)")
    term = Terminal(tmp_path)
    try:
        yield term
    finally:
        term.close()


def test_person_accepts_once_is_not_asked_again_and_is_warned_on_rotation(certs, tmp_path, terminal) -> None:
    first, second = certs["fields"]["first"], certs["fields"]["second"]
    config = tmp_path / "xdg"
    pin_file = config / "ftps-trust" / "known_servers.json"  # the default location under XDG_CONFIG_HOME
    with serving(tmp_path / "root", *certs["files"]["first"]) as srv:
        no_fleet_pins = f"--system-pin-file {tmp_path}/none.json"
        cmd = f"XDG_CONFIG_HOME={config} {FTPS_TRUST} 127.0.0.1:{srv.port} {no_fleet_pins}"

        # 1. Unknown certificate: fields shown, the person is asked, a wrong answer is asked again.
        terminal.command(cmd)
        screen = terminal.wait_for("(yes/no)? ")
        assert "certificate from an unknown CA" in screen
        assert first["fingerprint_sha256"] in screen
        assert f"sha256/{first['spki_sha256']}" in screen
        assert "The authenticity of 127.0.0.1:" in screen
        terminal.type("maybe")
        terminal.wait_for("Please type 'yes' or 'no': ")
        terminal.type("yes")
        screen = terminal.wait_for("EXIT=")
        assert "EXIT=0" in screen and "Saved 127.0.0.1:" in screen
        saved = json.loads(pin_file.read_text())["servers"][f"127.0.0.1:{srv.port}"]
        assert saved["spki_sha256"] == first["spki_sha256"]

        # 2. The next connection does not ask.
        terminal.command(cmd)
        screen = terminal.wait_for("EXIT=")
        assert "EXIT=0" in screen
        assert "(yes/no)?" not in screen
        assert "It matches the certificate saved for 127.0.0.1:" in screen and "(accepted 20" in screen

        # 3. The server's certificate is rotated: warning, old and new side by side; the person refuses.
        srv.use_certificate(*certs["files"]["second"])
        terminal.command(cmd)
        screen = terminal.wait_for("(yes/no)? ")
        assert "WARNING: THE SERVER'S CERTIFICATE HAS CHANGED!" in screen
        assert "SAVED (accepted" in screen and "PRESENTED NOW" in screen
        side_by_side = [line for line in screen.splitlines() if line.startswith("! SPKI pin")]
        assert len(side_by_side) == 1
        assert f"sha256/{first['spki_sha256']}" in side_by_side[0]
        assert f"sha256/{second['spki_sha256']}" in side_by_side[0]
        assert side_by_side[0].index(first["spki_sha256"]) < side_by_side[0].index(second["spki_sha256"])
        subject_row = next(line for line in screen.splitlines() if line[2:].startswith("Subject"))
        assert "CN=first" in subject_row and "CN=second" in subject_row
        terminal.type("no")
        screen = terminal.wait_for("EXIT=")
        assert "EXIT=4" in screen and "Refused. The saved certificate" in screen
        assert json.loads(pin_file.read_text())["servers"][f"127.0.0.1:{srv.port}"] == saved

        # 4. Refused again on the next run (until accepted), then accepted.
        terminal.command(cmd)
        terminal.wait_for("(yes/no)? ")
        terminal.type("yes")
        screen = terminal.wait_for("EXIT=")
        assert "EXIT=0" in screen
        now = json.loads(pin_file.read_text())["servers"][f"127.0.0.1:{srv.port}"]
        assert now["spki_sha256"] == second["spki_sha256"]

        terminal.command(cmd)
        screen = terminal.wait_for("EXIT=")
        assert "EXIT=0" in screen and "(yes/no)?" not in screen
