"""plugins/module_utils/pki host side (steps, store): request → sign → install, generations, check
mode, rejection."""

from __future__ import annotations

import grp
import os
import pathlib
import stat

import pytest
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.ca import (
    CertificateAuthority,
    issue_certificate,
    sign_batch,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import cert_to_pem
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import (
    generate_private_key,
    key_to_pem,
    spki_pin,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.steps import (
    current_problems,
    ensure_next_key,
    generations,
    install,
    request,
    rollback,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.store import Store
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import PKIError


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    authority = CertificateAuthority(str(tmp_path_factory.mktemp("ca") / "ca"))
    authority.create("ecdsa-p384", "test CA", 3650)
    return authority


@pytest.fixture
def store(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    # Unprivileged test runs cannot chown to root: keep ownership as is, test modes and layout.
    monkeypatch.setattr(os, "chown", lambda *a, **k: None)
    monkeypatch.setattr(os, "fchown", lambda *a, **k: None)
    return Store(str(tmp_path / "pki"), grp.getgrgid(os.getgid()).gr_name)


WANT = {"common_name": "srv1", "sans": ["srv1", "10.0.0.1"], "key_type": "ecdsa-p256"}


def _request(store, ca, check_mode=False, **over):
    args = {
        **WANT,
        "renew_before_days": 30,
        "rotate_key": True,
        "force": False,
        "issuer": ca.cert,
        "self_signed": False,
        "check_mode": check_mode,
        **over,
    }
    return request(store, **args)


def _converge(store, ca, **over):
    """One role run for an internal_ca host: request, batched sign, install."""
    req = _request(store, ca, **over)
    signed = sign_batch(ca, [{"host": "srv1", "csr": req["csr"], "sans": WANT["sans"]}], 90)
    cert = signed["certificates"].get("srv1", "")
    result = install(store, certificate=cert, chain=cert_to_pem(ca.cert), required_names=WANT["sans"])
    return req, result


def _tree(root: str) -> list[str]:
    return (
        sorted(str(p.relative_to(root)) for p in pathlib.Path(root).rglob("*"))
        if os.path.exists(root)
        else []
    )


def test_first_run_issues_and_second_run_changes_nothing(store, ca) -> None:
    req, res = _converge(store, ca)
    assert req["changed"] and req["reasons"] == ["missing: no current certificate"]
    assert res["changed"] and res["facts"]["sans"] == ["DNS:srv1", "IP:10.0.0.1"]
    req2, res2 = _converge(store, ca)
    assert not req2["changed"] and not req2["reissue"] and not res2["changed"]
    assert res2["facts"]["fingerprint_sha256"] == res["facts"]["fingerprint_sha256"]


def test_layout_modes_and_symlinks(store, ca) -> None:
    _, first = _converge(store, ca)
    _, second = _converge(store, ca, force=True)
    root = pathlib.Path(store.root)
    current, previous = root / "current", root / "previous"
    assert current.is_symlink() and not os.path.isabs(os.readlink(current))
    assert os.readlink(current).startswith("gen-") and os.readlink(previous).startswith("gen-")
    assert str(previous.resolve()) == first["facts"]["paths"]["generation"]
    assert str(current.resolve()) == second["facts"]["paths"]["generation"]
    assert stat.S_IMODE((current / "key.pem").stat().st_mode) == 0o640
    assert stat.S_IMODE(root.stat().st_mode) == 0o750
    for name in ("cert.pem", "chain.pem", "fullchain.pem"):
        assert stat.S_IMODE((current / name).stat().st_mode) == 0o644
    assert not (root / "pending").exists()
    # a third generation drops the oldest: only current + previous stay
    _converge(store, ca, force=True)
    assert len([p for p in root.iterdir() if p.name.startswith("gen-")]) == 2


def test_check_mode_on_a_fresh_host_writes_nothing(store, ca) -> None:
    req = _request(store, ca, check_mode=True)
    assert req["changed"] and req["reissue"] and req["csr"] == ""
    res = install(store, certificate="", check_mode=True)
    assert res["facts"] == {}
    assert _tree(store.root) == []


def test_check_mode_with_a_certificate_validates_and_writes_nothing(store, ca) -> None:
    req = _request(store, ca)
    cert = sign_batch(ca, [{"host": "srv1", "csr": req["csr"], "sans": WANT["sans"]}], 90)
    before = _tree(store.root)
    res = install(
        store,
        certificate=cert["certificates"]["srv1"],
        chain=cert_to_pem(ca.cert),
        required_names=WANT["sans"],
        check_mode=True,
    )
    assert res["changed"] and res["diff"]["before"] == {} and res["diff"]["after"]["sans"]
    assert _tree(store.root) == before


@pytest.mark.parametrize(
    ("over", "reason", "new_key"),
    [
        ({"renew_before_days": 100}, "expiring", True),
        ({"force": True}, "forced", True),
        ({"sans": ["srv1", "10.0.0.1", "ftp.example.org"]}, "sans", True),
        ({"key_type": "ecdsa-p384"}, "key type", True),
        ({"renew_before_days": 100, "rotate_key": False}, "expiring", False),
    ],
)
def test_reissue_rotates_the_key(store, ca, over, reason, new_key) -> None:
    _, first = _converge(store, ca)
    sans = over.get("sans", WANT["sans"])
    req = _request(store, ca, **over)
    assert req["reasons"][0].startswith(reason)
    cert = sign_batch(ca, [{"host": "srv1", "csr": req["csr"], "sans": sans}], 90)["certificates"]["srv1"]
    res = install(store, certificate=cert, chain=cert_to_pem(ca.cert), required_names=sans)
    assert res["changed"]
    assert (res["facts"]["spki_sha256"] != first["facts"]["spki_sha256"]) is new_key
    assert res["facts"]["fingerprint_sha256"] != first["facts"]["fingerprint_sha256"]


def test_pending_key_and_csr_are_reused_until_signed(store, ca) -> None:
    first = _request(store, ca)
    again = _request(store, ca)
    assert first["changed"] and not again["changed"]
    assert again["csr"] == first["csr"]
    assert stat.S_IMODE(os.stat(os.path.join(store.root, "pending", "key.pem")).st_mode) == 0o600


@pytest.mark.parametrize("case", ["foreign_key", "chain", "names", "garbage"])
def test_rejected_certificate_leaves_the_current_generation_serving(store, ca, case, tmp_path) -> None:
    _, good = _converge(store, ca)
    before = _tree(store.root)
    other = CertificateAuthority(str(tmp_path / "other"))
    other.create("ecdsa-p256", "other CA", 30)
    key = store.current_key()
    chain = cert_to_pem(ca.cert)
    required = WANT["sans"]
    if case == "foreign_key":
        key = generate_private_key("ecdsa-p256")
    if case == "chain":
        chain = cert_to_pem(other.cert)
    if case == "names":
        required = ["srv2"]
    cert = issue_certificate(
        key.public_key(), "srv1", WANT["sans"], issuer_cert=ca.cert, issuer_key=ca.key, validity_days=60
    )
    pem = "garbage" if case == "garbage" else cert_to_pem(cert)
    with pytest.raises(PKIError):
        install(store, certificate=pem, chain=chain, required_names=required)
    assert _tree(store.root) == before
    assert store.facts()["fingerprint_sha256"] == good["facts"]["fingerprint_sha256"]


def test_provided_certificate_and_key(store, ca) -> None:
    key = generate_private_key("rsa-2048")
    cert = issue_certificate(
        key.public_key(),
        "ftp.example.org",
        ["ftp.example.org"],
        issuer_cert=ca.cert,
        issuer_key=ca.key,
        validity_days=60,
    )
    args = {
        "certificate": cert_to_pem(cert),
        "chain": cert_to_pem(ca.cert),
        "private_key": key_to_pem(key).decode(),
        "required_names": ["ftp.example.org"],
    }
    assert install(store, **args)["changed"]
    assert not install(store, **args)["changed"]
    wrong = {**args, "private_key": key_to_pem(generate_private_key("rsa-2048")).decode()}
    with pytest.raises(PKIError, match="does not match"):
        install(store, **wrong)


def test_self_signed(store, ca) -> None:
    req = _request(store, ca, issuer=None, self_signed=True)
    assert req["reissue"]
    res = install(store, self_signed=True, common_name="srv1", sans=WANT["sans"], validity_days=90)
    assert res["changed"] and res["facts"]["issuer"] == res["facts"]["subject"]
    req2 = _request(store, ca, issuer=None, self_signed=True)
    assert not req2["reissue"]
    assert not install(store, self_signed=True, common_name="srv1", sans=WANT["sans"])["changed"]


def test_extra_reasons_renew_a_current_certificate(store, ca) -> None:
    # acme mode: the CA's renewal window (ARI) is a reason decided on the controller.
    _converge(store, ca)
    ari = "ari: the CA suggests renewal between 2026-12-01T00:00:00Z and 2026-12-02T00:00:00Z"
    req = _request(store, ca, extra_reasons=[ari, ""])
    assert req["reissue"]
    assert req["reasons"] == [ari]
    assert req["csr"].startswith("-----BEGIN CERTIFICATE REQUEST")


def test_extra_reasons_do_not_replace_missing(store, ca) -> None:
    req = _request(store, ca, extra_reasons=["ari: window open"])
    assert req["reasons"] == ["missing: no current certificate"]


def test_rollback_goes_back_to_the_previous_generation_once(store, ca) -> None:
    _converge(store, ca)
    old = store.facts()
    _converge(store, ca, force=True)
    new = store.facts()
    assert new["fingerprint_sha256"] != old["fingerprint_sha256"]
    planned = rollback(store, rollback_from=new["fingerprint_sha256"], check_mode=True)
    assert planned["rolled_back"] and store.facts()["fingerprint_sha256"] == new["fingerprint_sha256"]
    done = rollback(store, rollback_from=new["fingerprint_sha256"].upper())
    assert done["changed"] and done["rolled_back"]
    assert store.facts()["fingerprint_sha256"] == old["fingerprint_sha256"]
    assert done["generations"]["current"]["fingerprint_sha256"] == old["fingerprint_sha256"]
    # the generation it left stays as `previous`, for inspection
    assert done["generations"]["previous"]["fingerprint_sha256"] == new["fingerprint_sha256"]
    assert os.readlink(store.path("current")) == os.path.basename(old["paths"]["generation"])
    again = rollback(store, rollback_from=new["fingerprint_sha256"])
    assert not again["changed"] and store.facts()["fingerprint_sha256"] == old["fingerprint_sha256"]


def test_rollback_from_another_certificate_changes_nothing(store, ca) -> None:
    _converge(store, ca)
    _converge(store, ca, force=True)
    current = store.facts()["fingerprint_sha256"]
    result = rollback(store, rollback_from="ab" * 32)
    assert not result["changed"] and store.facts()["fingerprint_sha256"] == current
    assert rollback(store, rollback_from="")["generations"]["current"]["fingerprint_sha256"] == current


def test_rollback_without_a_previous_generation_is_an_error(store, ca) -> None:
    _converge(store, ca)
    only = store.facts()["fingerprint_sha256"]
    with pytest.raises(PKIError, match="no previous generation"):
        rollback(store, rollback_from=only)
    assert store.facts()["fingerprint_sha256"] == only


# ---- the next key (RFC 7671 8.1 "current + next"): made ahead, pinned, used by the rotation ----


def test_next_key_is_made_once_kept_private_and_reported_as_a_pin(store, ca) -> None:
    _, first = _converge(store, ca)
    assert "next_spki_sha256" not in first["facts"]
    assert ensure_next_key(store, "ecdsa-p256", check_mode=True) == {
        "changed": True,
        "next_spki_sha256": "",
    }
    assert not os.path.exists(os.path.join(store.root, "next"))
    made = ensure_next_key(store, "ecdsa-p256")
    again = ensure_next_key(store, "ecdsa-p256")
    assert made["changed"] and not again["changed"]
    assert again["next_spki_sha256"] == made["next_spki_sha256"] != first["facts"]["spki_sha256"]
    # one SPKI format: the same as the certificate's spki_sha256
    assert made["next_spki_sha256"] == spki_pin(store.next_key().public_key())
    assert store.facts()["next_spki_sha256"] == made["next_spki_sha256"]
    assert stat.S_IMODE(os.stat(os.path.join(store.root, "next")).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(store.root, "next", "key.pem")).st_mode) == 0o600
    # a next key of another type than wanted is replaced
    other = ensure_next_key(store, "ecdsa-p384")
    assert other["changed"] and other["next_spki_sha256"] != made["next_spki_sha256"]


def test_rotation_uses_the_announced_next_key_and_then_needs_a_fresh_one(store, ca) -> None:
    _converge(store, ca)
    announced = ensure_next_key(store, "ecdsa-p256")["next_spki_sha256"]
    _, rotated = _converge(store, ca, force=True)
    assert rotated["changed"]
    assert rotated["facts"]["spki_sha256"] == announced  # the pin published before the switch
    assert store.next_key() is None and "next_spki_sha256" not in rotated["facts"]
    fresh = ensure_next_key(store, "ecdsa-p256")
    assert fresh["changed"] and fresh["next_spki_sha256"] not in (announced,)


def test_without_a_next_key_a_rotation_still_makes_a_new_key(store, ca) -> None:
    _, first = _converge(store, ca)
    _, rotated = _converge(store, ca, force=True)
    assert rotated["facts"]["spki_sha256"] != first["facts"]["spki_sha256"]


def test_current_problems_name_a_damaged_certificate_or_key(store, ca) -> None:
    """What rotate.yml leaves out: a serving generation whose files are damaged or do not match."""
    assert current_problems(store) == []  # no generation: a job for site.yml, not a broken host
    _converge(store, ca)
    assert current_problems(store) == []
    gen = pathlib.Path(store.generation())
    cert, key = (gen / "cert.pem").read_bytes(), (gen / "key.pem").read_bytes()
    # the fault scenario's corruption: characters cut from the middle of the base64
    (gen / "cert.pem").write_bytes(cert[:80] + cert[90:])
    (problem,) = current_problems(store)
    assert problem.startswith(f"the deployed certificate {gen / 'cert.pem'} is damaged")
    assert generations(store)["current"] == {}  # what made rotate.yml skip it silently before
    (gen / "cert.pem").write_bytes(cert)
    (gen / "key.pem").unlink()
    assert current_problems(store) == [f"the deployed key {gen / 'key.pem'} is missing or cannot be read"]
    _converge(store, ca, force=True)
    other_key = (pathlib.Path(store.generation()) / "key.pem").read_bytes()
    (gen / "key.pem").write_bytes(key)
    rollback(store, rollback_from=store.facts()["fingerprint_sha256"])
    assert current_problems(store) == []
    (gen / "key.pem").write_bytes(other_key)
    assert current_problems(store) == [f"the deployed key in {gen} is not the certificate's key"]
