"""What side_effect.yml's CA rollover left behind, read back from the controller and the hosts.

side_effect.yml already failed the scenario on the spot if a stage misbehaved or a transfer
failed; these tests check the end state as an operator (or an auditor) would find it.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest
from conftest import SERVERS, check_serves_own_names

EPHEMERAL = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
CA = EPHEMERAL / "pki" / "ca"
HERE = EPHEMERAL / "ca_rollover"


def _state() -> dict:
    return json.loads((CA.parent / "ca-rollover.json").read_text())


def _pem_subject(path: pathlib.Path) -> str:
    from cryptography import x509

    return x509.load_pem_x509_certificate(path.read_bytes()).subject.rfc4514_string()


def test_the_state_says_complete_with_every_step_in_order() -> None:
    state = _state()
    assert state["stage"] == "complete"
    stages = state["stages"]
    order = [
        stages["trust"]["started_at"],
        stages["trust"]["done_at"],
        stages["reissue"]["swapped_at"],
        stages["reissue"]["done_at"],
        stages["retire"]["old_key_deleted_at"],
        stages["retire"]["done_at"],
    ]
    assert order == sorted(order)
    assert state["old"]["subject"] != state["new"]["subject"]


def test_the_new_ca_signs_and_the_old_key_is_gone() -> None:
    state = _state()
    assert _pem_subject(CA / "ca.pem") == state["new"]["subject"]
    # the new CA's key is encrypted at rest like the old one was (the scenario's CA has a passphrase)
    assert (CA / "ca.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    retired = CA.parent / "ca-retired" / state["old"]["fingerprint_sha256"]
    assert _pem_subject(retired / "ca.pem") == state["old"]["subject"]
    assert sorted(p.name for p in retired.iterdir()) == ["ca.pem"]
    assert not (CA.parent / "ca-next").exists() and not (CA.parent / "ca-previous").exists()


def test_the_client_trusts_exactly_the_new_ca(client) -> None:
    files = client.run("ls /usr/local/share/ca-certificates/").stdout.split()
    assert files == ["ftps-kit-internal.crt"], files
    assert (
        client.file("/usr/local/share/ca-certificates/ftps-kit-internal.crt").content
        == (CA / "ca.pem").read_bytes()
    )
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    retired = CA.parent / "ca-retired" / _state()["old"]["fingerprint_sha256"] / "ca.pem"
    new = client.run(f"echo '{(CA / 'ca.pem').read_text()}' | openssl verify -CAfile {bundle}")
    old = client.run(f"echo '{retired.read_text()}' | openssl verify -CAfile {bundle}")
    assert new.rc == 0, new.stderr
    assert old.rc != 0, old.stdout


@pytest.mark.parametrize("name", SERVERS)
def test_every_server_serves_a_certificate_from_the_new_ca(client, name) -> None:
    new = _state()["new"]["subject"]
    for flag in ("", "-starttls ftp"):
        port = 21 if flag else 990
        out = client.run(
            f"openssl s_client -connect {name}:{port} {flag} -servername {name} -verify_return_error "
            f"-CAfile /etc/ssl/certs/ca-certificates.crt </dev/null 2>&1"
        )
        assert "Verify return code: 0 (ok)" in out.stdout, out.stdout[-800:]
        issuer = next(line for line in out.stdout.splitlines() if line.strip().startswith("i:"))
        assert new.split("=", 1)[1] in issuer, issuer


def test_the_loads_counted_transfers_and_no_failure() -> None:
    for n in (1, 2):
        result = json.loads((HERE / f"load-{n}.json").read_text())
        assert result["failed"] == 0 and result["pin_failures"] == 0
        assert result["transfers"] > 0 and result["pins_checked"] > 0


@pytest.mark.parametrize("name", SERVERS)
def test_every_server_serves_exactly_its_own_names(client, name: str) -> None:
    """Issue 20: stage 2 re-issues through rotate.yml, whose certificates once carried another
    server's name and address. Read with openssl s_client from the client, on both listeners."""
    check_serves_own_names(client, name)
