"""The probe (ftps_client.probe and the ftps_probe module) against real servers on 127.0.0.1.

Happy paths run against ftpsd (the shared ``server`` fixture: root -> intermediate -> leaf,
session reuse required). The failing cases need servers ftpsd refuses to be (expired
certificate, plaintext only), so they run against stock pyftpdlib (tests/client_servers.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading

import pytest
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.client import (
    ProbeError,
    probe,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.x509 import (
    parse_certificate,
)
from cryptography.hazmat.primitives import hashes

from tests.certs import make_ca, make_leaf
from tests.client_servers import PASSWORD, USER, serving
from tests.integration.conftest import PASSWORDS
from tests.paths import ROOT

# -- happy paths against ftpsd ----------------------------------------------------------------


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_probe_verifies_ftpsd_and_proves_reused_data_session(server, implicit: bool) -> None:
    port = server.implicit_port if implicit else server.port
    pin = {"fingerprint_sha256": server.cert.cert.fingerprint(hashes.SHA256()).hex()}
    result = probe(
        "127.0.0.1",
        port,
        implicit=implicit,
        ca_file=str(server.cafile),
        pin=pin,
        username="alice",
        password=PASSWORDS["alice"],
        round_trip=True,
        payload_size=200_000,
    )
    assert result["verified"] is True
    assert result["pin_matched"] is True
    assert result["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert result["cipher"]
    # ftpsd refuses data connections that do not reuse the session, so this proves it end to end.
    assert result["data_session_reused"] is True
    assert result["round_trip"]["match"] is True
    assert result["round_trip"]["bytes"] == 200_000
    assert not any(p.name.startswith(".ftps-probe-") for p in server.homes["alice"].iterdir())
    cert = result["certificate"]
    assert cert["subject"] == server.cert.cert.subject.rfc4514_string()
    assert cert["sans"] == ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]  # tests/certs.py names ::1 too
    if sys.version_info >= (3, 13):
        assert result["chain_complete"] is True
        assert [c["subject"] for c in result["chain"]] == [
            server.cert.cert.subject.rfc4514_string(),
            server.ca.intermediate.subject.rfc4514_string(),
        ]
    else:
        assert result["chain_complete"] is False
        assert len(result["chain"]) == 1


# -- failing cases against stock pyftpdlib ------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("probe-pki")
    ca, other_ca = make_ca("fleet CA"), make_ca("some other CA")
    (d / "ca.pem").write_bytes(ca.pem)
    (d / "other-ca.pem").write_bytes(other_ca.pem)
    now = dt.datetime.now(dt.UTC)
    certs = {
        "good": make_leaf(ca),
        "other_name": make_leaf(ca, cn="ftp.other.test", sans=("DNS:ftp.other.test",)),
        "expired": make_leaf(
            ca, not_before=now - dt.timedelta(days=100), not_after=now - dt.timedelta(days=10)
        ),
        "self_signed": make_leaf(None),
    }
    out = {"dir": d, "ca": str(d / "ca.pem"), "other_ca": str(d / "other-ca.pem"), "issued": certs}
    for name, issued in certs.items():
        out[name] = issued.write(d, name)
    return out


def _fail(port: int, **kwargs) -> ProbeError:
    with pytest.raises(ProbeError) as info:
        probe("127.0.0.1", port, timeout=10, **kwargs)
    return info.value


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
@pytest.mark.parametrize(
    ("cert", "kwargs", "kind", "phrases"),
    [
        ("good", {"ca_file": "other_ca"}, "unknown_ca", ["unknown CA", "issued by CN=fleet CA", "CA file"]),
        ("good", {}, "unknown_ca", ["unknown CA", "the trusted CAs"]),  # the system store
        ("self_signed", {"ca_file": "ca"}, "unknown_ca", ["unknown CA", "self-signed"]),
        ("other_name", {"ca_file": "ca"}, "hostname_mismatch", ["127.0.0.1 is not in", "DNS:ftp.other.test"]),
        (
            "good",
            {"ca_file": "ca", "server_hostname": "ftp.elsewhere.test"},
            "hostname_mismatch",
            ["elsewhere"],
        ),
        ("expired", {"ca_file": "ca"}, "expired", ["expired on"]),
        (
            "good",
            {"ca_file": "ca", "pin": {"fingerprint_sha256": "00" * 32}},
            "pin_mismatch",
            ["pin mismatch", "127.0.0.1:", "pinned 0000"],
        ),
        (
            "good",
            {"ca_file": "ca", "pin": {"spki_sha256": "A" * 43 + "="}},
            "pin_mismatch",
            ["SPKI pin is"],
        ),
    ],
)
def test_each_failure_has_a_clear_message(pki, tmp_path, *, cert, kwargs, kind, phrases, implicit) -> None:
    kwargs = dict(kwargs)
    if "ca_file" in kwargs:
        kwargs["ca_file"] = pki[kwargs["ca_file"]]
    certfile, keyfile = pki[cert]
    with serving(tmp_path / "root", certfile, keyfile, "implicit" if implicit else "explicit") as srv:
        error = _fail(srv.port, implicit=implicit, **kwargs)
    assert error.kind == kind, error.message
    for phrase in phrases:
        assert phrase in error.message
    # What the server presented is reported even though it was refused.
    expected = parse_certificate(pki["issued"][cert].der)["fingerprint_sha256"]
    assert error.result["certificate"]["fingerprint_sha256"] == expected


def test_empty_listings_on_resumed_tls13_sessions(pki, tmp_path) -> None:
    """Regression: a server that writes a data connection's bytes and closes it before the
    client's Finished (TLS 1.3 0.5-RTT; stock pyftpdlib does) left OpenSSL "in init", and the
    client's shutdown failed with SHUTDOWN_WHILE_IN_INIT about one empty listing in six."""
    certfile, keyfile = pki["good"]
    with serving(tmp_path / "root", certfile, keyfile) as srv:
        results = [
            probe("127.0.0.1", srv.port, ca_file=pki["ca"], username=USER, password=PASSWORD)
            for _ in range(40)
        ]
    assert {r["tls_version"] for r in results} == {"TLSv1.3"}
    assert all(r["data_session_reused"] is True for r in results)


def test_pinned_self_signed_server_is_trusted_without_ca(pki, tmp_path) -> None:
    certfile, keyfile = pki["self_signed"]
    fields = parse_certificate(pki["issued"]["self_signed"].der)
    with serving(tmp_path / "root", certfile, keyfile) as srv:
        result = probe(
            "127.0.0.1",
            srv.port,
            verify=False,
            pin={"spki_sha256": fields["spki_sha256"]},
            username=USER,
            password=PASSWORD,
        )
    assert result["verified"] is False
    assert result["pin_matched"] is True
    assert result["data_session_reused"] is True


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_server_without_tls(tmp_path, implicit: bool) -> None:
    with serving(tmp_path / "root", tls="none") as srv:
        error = _fail(srv.port, implicit=implicit)
    assert error.kind == "no_tls"
    assert "server without TLS" in error.message
    assert ("did not speak TLS" if implicit else "refused AUTH TLS") in error.message
    if implicit:
        assert "it answered in plaintext: '220 test server ready'" in error.message


@pytest.mark.parametrize(
    ("implicit", "greeting", "phrase"),
    [
        (
            True,
            b"421 Too many failed logins; your address is banned",
            "refused the connection in plaintext before TLS",
        ),
        (False, b"421 Too many failed logins; your address is banned", "cannot reach an FTP server"),
        (False, b"530 Not allowed from your address", "cannot reach an FTP server"),
    ],
)
def test_a_refusal_before_tls_is_not_called_no_tls(implicit: bool, greeting: bytes, phrase: str) -> None:
    """A server that refuses in plaintext before TLS (a ban, a full server) says so."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def refuse() -> None:
        with contextlib.suppress(OSError):
            for _ in range(2 if implicit else 1):  # implicit: the TLS attempt, then reading what it says
                conn, _addr = listener.accept()
                with conn:
                    conn.sendall(greeting + b"\r\n")

    thread = threading.Thread(target=refuse, daemon=True)
    thread.start()
    try:
        error = _fail(listener.getsockname()[1], implicit=implicit)
    finally:
        thread.join(timeout=10)
        listener.close()
    assert error.kind == "connect", error.message
    assert phrase in error.message
    assert greeting.decode()[:20] in error.message


def test_login_refused(pki, tmp_path) -> None:
    certfile, keyfile = pki["good"]
    with serving(tmp_path / "root", certfile, keyfile) as srv:
        error = _fail(srv.port, ca_file=pki["ca"], username=USER, password="wrong")
    assert error.kind == "login"
    assert f"login as {USER} refused" in error.message
    assert error.result["verified"] is True


def test_nothing_listening() -> None:
    from tests.integration.conftest import free_port

    error = _fail(free_port())
    assert error.kind == "connect"


# -- the Ansible module, run by ansible itself -----------------------------------------------------


def _ansible_probe(args: dict, *, python: str, check: bool = False) -> dict:
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_PYTHON_INTERPRETER=python,
    )
    cmd = [
        str(pathlib.Path(sys.executable).parent / "ansible"),
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-m",
        "ftpskit.ftps.ftps_probe",
        "-a",
        json.dumps(args),
    ]
    if check:
        cmd.append("--check")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False)
    data = json.loads(proc.stdout)
    return data["plays"][0]["tasks"][0]["hosts"]["localhost"]


PYTHONS = [sys.executable] + (["/usr/bin/python3"] if os.path.exists("/usr/bin/python3") else [])


@pytest.mark.parametrize("python", PYTHONS)
def test_module_reports_fields_and_fails_clearly(pki, tmp_path, python: str) -> None:
    """Run by ansible on this host's interpreters (Debian 12's python3 is 3.11: leaf only)."""
    certfile, keyfile = pki["good"]
    fields = parse_certificate(pki["issued"]["good"].der)
    with serving(tmp_path / "root", certfile, keyfile) as srv:
        base = {"host": "127.0.0.1", "port": srv.port, "ca_path": pki["ca"]}
        ok = _ansible_probe(
            {
                **base,
                "username": USER,
                "password": PASSWORD,
                "round_trip": True,
                "pin": {"spki_sha256": fields["spki_sha256"]},
            },
            python=python,
        )
        checked = _ansible_probe(
            {**base, "username": USER, "password": PASSWORD, "round_trip": True}, python=python, check=True
        )
        bad = _ansible_probe({**base, "pin": {"fingerprint_sha256": "ab" * 32}}, python=python)
    assert ok.get("failed") is not True, ok
    assert ok["changed"] is False
    assert ok["verified"] is True and ok["pin_matched"] is True and ok["data_session_reused"] is True
    assert ok["round_trip"]["match"] is True
    assert ok["certificate"]["fingerprint_sha256"] == fields["fingerprint_sha256"]
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info >= (3, 13))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # 3.13+ reads the served chain; Debian 12's 3.11 only the leaf, and says so.
    assert ok["chain_complete"] is (version == "True")
    assert len(ok["chain"]) == 1  # this server sends its leaf only
    if version != "True":
        assert "Python < 3.13" in ok["chain_note"]
    assert "certificate_pem" not in ok
    assert PASSWORD not in json.dumps(ok)
    assert checked["round_trip"] == {"skipped": "check mode makes no transfer"}
    assert bad["failed"] is True
    assert bad["error_kind"] == "pin_mismatch"
    assert bad["msg"].startswith("pin mismatch for 127.0.0.1:")
    assert bad["certificate"]["subject"] == fields["subject"]


@pytest.mark.parametrize("concurrency", [0, 257])
def test_module_refuses_a_concurrency_out_of_bounds(concurrency: int) -> None:
    """The list form's bound is probe_many's (one check); the module fails with its message."""
    bad = _ansible_probe(
        {"targets": [{"host": "127.0.0.1", "port": 9}], "concurrency": concurrency},
        python=sys.executable,
    )
    assert bad["failed"] is True
    assert bad["msg"] == f"concurrency must be from 1 to 256, not {concurrency}"


def test_module_pin_file_keys_in_any_spelling_and_fails_closed_without_a_pin(tmp_path) -> None:
    """``pin_file`` with ``validate_certs: false`` (a self-signed server accepted with ftps-trust):
    the entry is found however the file spells the key, and a file without an entry for the server
    fails the task instead of probing a server whose identity nothing checks."""
    issued = make_leaf(None, cn="selfsigned")
    certfile, keyfile = issued.write(tmp_path, "selfsigned")
    fields = parse_certificate(issued.der)
    pins = tmp_path / "known_servers.json"
    with serving(tmp_path / "root", certfile, keyfile) as srv:
        entry = {"fingerprint_sha256": fields["fingerprint_sha256"].upper(), "source": "test"}
        pins.write_text(json.dumps({"version": 1, "servers": {f"LocalHost.:{srv.port}": entry}}))
        base = {"host": "localhost", "port": srv.port, "validate_certs": False, "pin_file": str(pins)}
        found = _ansible_probe(base, python=sys.executable)
        pins.write_text(json.dumps({"version": 1, "servers": {f"other.example:{srv.port}": entry}}))
        missing = _ansible_probe(base, python=sys.executable)
    assert found.get("failed") is not True, found
    assert found["pin_matched"] is True
    assert missing["failed"] is True
    assert missing["error_kind"] == "pin_mismatch"
    assert f"has no pin for localhost:{srv.port}" in missing["msg"]


def test_a_client_or_ca_certificate_served_as_a_servers_is_named_so(tmp_path) -> None:
    """OpenSSL refuses them ("unsuitable certificate purpose"); the message says what that means,
    so the person asked by ftps-trust knows it is not a server's certificate at all."""
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from tests.certs import Issued, general_names, leaf_certificate, make_key, subject_name

    ca = make_ca("purpose CA")
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    now = dt.datetime.now(dt.UTC)
    key = make_key("p256")
    client_only = leaf_certificate(
        key,
        subject_name("localhost"),
        issuer=ca,
        sans=general_names(("DNS:localhost", "IP:127.0.0.1")),
        eku=(ExtendedKeyUsageOID.CLIENT_AUTH,),
        not_before=now - dt.timedelta(hours=1),
        not_after=now + dt.timedelta(days=9),
    )
    served = {"client": Issued(client_only, key).write(tmp_path, "client"), "ca": ca.write(tmp_path, "ca")}
    says = {"client": "has a key usage that excludes TLS servers", "ca": "is a CA certificate"}
    for name, files in served.items():
        with serving(tmp_path / name, *files) as srv, pytest.raises(ProbeError) as raised:
            probe(
                "127.0.0.1",
                srv.port,
                ca_file=str(tmp_path / "ca.pem"),
                server_hostname="localhost" if name == "client" else "purpose CA",
                timeout=5,
            )
        assert raised.value.kind == "verify"
        assert raised.value.message.startswith("certificate not meant for a server"), raised.value.message
        assert says[name] in raised.value.message
