"""The accidental-second-CA guard (plugins/module_utils/pki/ca_guard.py) and ftps_pki_ca using it.

A store without a CA is made a CA only for a fleet without one: when a server of the run already
serves a certificate issued by a CA, ftps_pki_ca fails before it creates anything, names what it
found and how to point the kit at the existing CA; only create_for_existing_fleet overrides it.
"""

from __future__ import annotations

import json
import pathlib

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.ca import (
    CertificateAuthority,
    issue_certificate,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.ca_guard import (
    SHOWN_HOSTS,
    issued_certificates,
    second_ca_refusal,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import build_csr, cert_to_pem, csr_to_pem
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import generate_private_key
from ansible_collections.ftpskit.ftps.plugins.modules import ftps_pki_ca


@pytest.fixture(scope="module")
def fleet_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    authority = CertificateAuthority(str(tmp_path_factory.mktemp("old") / "ca"))
    authority.create("ecdsa-p256", "fleet CA", 3650)
    return authority


def _issued(ca: CertificateAuthority, name: str) -> str:
    key = generate_private_key("ecdsa-p256")
    csr = csr_to_pem(build_csr(key, name, [name]))
    return ca.sign(csr, name, [name], 90, name)


def _self_signed(name: str) -> str:
    key = generate_private_key("ecdsa-p256")
    cert = issue_certificate(
        key.public_key(), name, [name], issuer_cert=None, issuer_key=key, validity_days=90
    )
    return cert_to_pem(cert)


def test_a_fleet_without_certificates_may_get_a_ca() -> None:
    assert second_ca_refusal("km1", "/var/lib/ftps-kit/pki/ca", {}) == ""
    assert second_ca_refusal("km1", "/x", {"ftp1": "", "ftp2": "  \n"}) == ""


def test_self_signed_certificates_are_no_evidence_of_a_ca() -> None:
    assert issued_certificates({"ftp1": _self_signed("ftp1")}) == {}
    assert second_ca_refusal("localhost", "/x", {"ftp1": _self_signed("ftp1")}) == ""


def test_certificates_from_a_ca_stop_the_creation_and_say_what_was_found(
    fleet_ca: CertificateAuthority,
) -> None:
    pem = _issued(fleet_ca, "ftp1")
    facts = issued_certificates({"ftp1": pem, "ftp2": ""})
    assert list(facts) == ["ftp1"]
    assert facts["ftp1"]["issuer"] == "CN=fleet CA"
    assert len(facts["ftp1"]["fingerprint_sha256"]) == 64
    message = second_ca_refusal("km1", "/var/lib/ftps-kit/pki/ca", {"ftp1": pem, "ftp2": ""})
    # what was found, where the store looked, that nothing changed, and the ways out
    for part in (
        "km1:/var/lib/ftps-kit/pki/ca",
        "has no CA",
        "1 server(s)",
        "CN=fleet CA",
        f"ftp1 (CN=fleet CA, sha256 {facts['ftp1']['fingerprint_sha256'][:16]}",
        "nothing was changed",
        "ftps_pki_store_dir",
        "group ftps_ca",
        "playbooks/migrate_store.yml",
        "ftps_pki_ca_create_for_existing_fleet=true",
    ):
        assert part in message, part
    assert "ftp2" not in message


def test_the_explicit_variable_allows_a_new_ca(fleet_ca: CertificateAuthority) -> None:
    assert second_ca_refusal("km1", "/x", {"ftp1": _issued(fleet_ca, "ftp1")}, True) == ""


@pytest.mark.parametrize(
    "content", ["not a certificate", "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----"]
)
def test_an_unreadable_deployed_certificate_counts(content: str) -> None:
    assert issued_certificates({"ftp1": content})["ftp1"]["issuer"] == "(unreadable certificate)"
    assert "ftp1 ((unreadable certificate))" in second_ca_refusal("localhost", "/x", {"ftp1": content})


def test_a_large_fleet_is_named_in_part(fleet_ca: CertificateAuthority) -> None:
    pem = _issued(fleet_ca, "ftp")
    message = second_ca_refusal("km1", "/x", {f"ftp{n:02d}": pem for n in range(SHOWN_HOSTS + 3)})
    assert f"{SHOWN_HOSTS + 3} server(s)" in message
    assert "and 3 more" in message
    assert f"ftp{SHOWN_HOSTS - 1:02d}" in message and f"ftp{SHOWN_HOSTS:02d}" not in message


# -- the module ------------------------------------------------------------------------------


def _run(capsys: pytest.CaptureFixture[str], args: dict) -> dict:
    with patch_module_args(args), pytest.raises(SystemExit):
        ftps_pki_ca.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("check_mode", [False, True])
def test_module_refuses_before_creating_anything(
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
    fleet_ca: CertificateAuthority,
    check_mode: bool,
) -> None:
    ca_dir = tmp_path / "store" / "pki" / "ca"
    result = _run(
        capsys,
        {
            "path": str(ca_dir),
            "store": "km1",
            "fleet_certificates": {"ftp1": _issued(fleet_ca, "ftp1"), "ftp2": ""},
            "_ansible_check_mode": check_mode,
        },
    )
    assert result["failed"] is True
    assert result["msg"].startswith(f"The kit's store (km1:{ca_dir}) has no CA")
    assert not (tmp_path / "store").exists()


def test_module_creates_the_ca_for_a_new_fleet_and_keeps_it(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], fleet_ca: CertificateAuthority
) -> None:
    ca_dir = tmp_path / "ca"
    first = _run(
        capsys, {"path": str(ca_dir), "fleet_certificates": {"ftp1": "", "ftp2": _self_signed("ftp2")}}
    )
    assert first["changed"] is True and (ca_dir / "ca.key").is_file()
    # the CA now exists: certificates it issued (or any other) change nothing, it is never replaced
    again = _run(capsys, {"path": str(ca_dir), "fleet_certificates": {"ftp1": _issued(fleet_ca, "ftp1")}})
    assert again["changed"] is False
    assert again["fingerprint_sha256"] == first["fingerprint_sha256"]


def test_module_creates_a_ca_for_an_existing_fleet_only_when_told(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], fleet_ca: CertificateAuthority
) -> None:
    ca_dir = tmp_path / "ca"
    result = _run(
        capsys,
        {
            "path": str(ca_dir),
            "fleet_certificates": {"ftp1": _issued(fleet_ca, "ftp1")},
            "create_for_existing_fleet": True,
        },
    )
    assert result["changed"] is True and result["subject"] == "CN=ftps-kit internal CA"
    assert (ca_dir / "ca.pem").is_file()
