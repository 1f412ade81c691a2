"""The CA rollover's state machine (plugins/module_utils/pki/rollover.py), crashes included."""

from __future__ import annotations

import json
import os

import pytest
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki import rollover as ro
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.ca import CertificateAuthority
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import PKIError

PASS = "correct horse"


@pytest.fixture
def ca_dir(tmp_path):
    path = str(tmp_path / "pki" / "ca")
    CertificateAuthority(path).create("ecdsa-p256", "ftps-kit internal CA", 3650, PASS)
    return path


def fp(path: str) -> str:
    return ro._ca_summary(CertificateAuthority(path)).get("fingerprint_sha256", "")


def step(ca_dir: str, action: str, passphrase: str = PASS, **kw):
    return ro.run(action, ca_dir, passphrase, key_type="ecdsa-p256", **kw)


def test_the_whole_rollover_in_order(ca_dir):
    old = fp(ca_dir)
    assert step(ca_dir, "status")["stage"] == "none"

    first = step(ca_dir, "prepare")
    assert first["changed"] and first["stage"] == "trust"
    new = first["next"]["fingerprint_sha256"]
    assert new and new != old and first["active"]["fingerprint_sha256"] == old
    assert first["next"]["subject"] != first["active"]["subject"]
    assert first["next"]["key_encrypted"] is True
    assert len(first["trust"]) == 2  # clients must trust both from now on
    assert not step(ca_dir, "prepare")["changed"]  # idempotent

    assert step(ca_dir, "trusted")["stage"] == "reissue"
    assert not step(ca_dir, "trusted")["changed"]

    swapped = step(ca_dir, "swap")
    assert swapped["changed"]
    assert fp(ca_dir) == new and fp(ca_dir + "-previous") == old
    assert not os.path.exists(ca_dir + "-next")
    # the old key is kept until stage 3, encrypted at rest (a passphrase is set)
    assert swapped["previous"]["key_present"] and swapped["previous"]["key_encrypted"]
    with open(ca_dir + "-previous/ca.key", "rb") as handle:
        assert handle.read().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert len(swapped["trust"]) == 2
    assert not step(ca_dir, "swap")["changed"]
    # the new CA signs now
    assert (
        CertificateAuthority(ca_dir).load(PASS).cert.subject.rfc4514_string()
        == swapped["state"]["new"]["subject"]
    )

    assert step(ca_dir, "reissued")["stage"] == "retire"
    retired = step(ca_dir, "retire")
    assert retired["changed"] and not os.path.exists(ca_dir + "-previous")
    archive = os.path.join(ca_dir + "-retired", old)
    assert os.path.exists(os.path.join(archive, "ca.pem"))
    assert not os.path.exists(os.path.join(archive, "ca.key"))
    assert retired["retired"]["fingerprint_sha256"] == old and not retired["retired"]["key_present"]
    assert not step(ca_dir, "retire")["changed"]

    done = step(ca_dir, "retired")
    assert done["stage"] == "complete" and len(done["trust"]) == 1
    assert set(done["state"]["stages"]) == {"trust", "reissue", "retire"}
    assert not step(ca_dir, "retired")["changed"]
    assert ro.rollover_in_progress(ca_dir) == ""

    # a later rollover starts from the new CA and keeps the finished one's record
    again = step(ca_dir, "prepare", common_name="ftps-kit internal CA 3")
    assert again["state"]["old"]["fingerprint_sha256"] == new
    record = os.path.join(ca_dir + "-retired", f"rollover-{done['state']['id']}.json")
    with open(record, encoding="utf-8") as handle:
        assert json.load(handle)["stage"] == "complete"


@pytest.mark.parametrize(
    ("action", "stage"),
    [("trusted", "none"), ("swap", "none"), ("reissued", "none"), ("retire", "none"), ("retired", "none")],
)
def test_a_step_before_its_stage_is_refused_and_changes_nothing(ca_dir, action, stage):
    before = sorted(os.listdir(os.path.dirname(ca_dir)))
    with pytest.raises(PKIError, match=f"at stage '{stage}'"):
        step(ca_dir, action)
    assert sorted(os.listdir(os.path.dirname(ca_dir))) == before


def test_stage_order_is_enforced(ca_dir):
    step(ca_dir, "prepare")
    with pytest.raises(PKIError, match="needs stage 'reissue'"):
        step(ca_dir, "swap")  # clients do not trust the new CA yet
    step(ca_dir, "trusted")
    with pytest.raises(PKIError, match="not swapped"):
        step(ca_dir, "reissued")
    with pytest.raises(PKIError, match="needs stage 'retire'"):
        step(ca_dir, "retire")  # the old key must stay while servers may still need it
    assert fp(ca_dir + "-next")


def test_a_crash_between_the_two_renames_resumes_and_never_makes_a_third_ca(ca_dir):
    old = fp(ca_dir)
    new = step(ca_dir, "prepare")["next"]["fingerprint_sha256"]
    step(ca_dir, "trusted")
    os.rename(ca_dir, ca_dir + "-previous")  # the first rename happened, then the controller died
    assert not os.path.exists(ca_dir)
    assert ro.rollover_in_progress(ca_dir) == "reissue"  # ftps_pki_ca refuses to create a CA here
    assert step(ca_dir, "status")["stage"] == "reissue"
    assert step(ca_dir, "swap")["changed"]
    assert (fp(ca_dir), fp(ca_dir + "-previous")) == (new, old)


def test_a_wrong_passphrase_moves_nothing(ca_dir):
    step(ca_dir, "prepare")
    step(ca_dir, "trusted")
    with pytest.raises(PKIError, match="CA"):
        step(ca_dir, "swap", passphrase="wrong")
    assert fp(ca_dir + "-next") and not os.path.exists(ca_dir + "-previous")


def test_an_unexpected_layout_is_described_not_guessed(ca_dir):
    step(ca_dir, "prepare")
    step(ca_dir, "trusted")
    CertificateAuthority(ca_dir + "-previous").create("ecdsa-p256", "stranger", 10, PASS)
    with pytest.raises(PKIError, match="unexpected state, unknown"):
        step(ca_dir, "swap")


def test_the_new_ca_needs_its_own_name(ca_dir):
    with pytest.raises(PKIError, match="is the current CA's"):
        step(ca_dir, "prepare", common_name="ftps-kit internal CA")
    assert not os.path.exists(ca_dir + "-next") and step(ca_dir, "status")["stage"] == "none"


def test_a_stray_next_directory_is_not_adopted(ca_dir):
    CertificateAuthority(ca_dir + "-next").create("ecdsa-p256", "someone else", 10, PASS)
    with pytest.raises(PKIError, match="no rollover is in progress"):
        step(ca_dir, "prepare")


def test_a_crash_after_archiving_still_deletes_the_old_key(ca_dir):
    old = fp(ca_dir)
    for action in ("prepare", "trusted", "swap", "reissued"):
        step(ca_dir, action)
    os.makedirs(ca_dir + "-retired", mode=0o700)
    os.rename(ca_dir + "-previous", os.path.join(ca_dir + "-retired", old))  # died before the unlink
    with pytest.raises(PKIError, match="still there"):
        step(ca_dir, "retired")
    assert step(ca_dir, "retire")["changed"]
    assert not os.path.exists(os.path.join(ca_dir + "-retired", old, "ca.key"))
    assert step(ca_dir, "retired")["stage"] == "complete"


def test_check_mode_changes_nothing(ca_dir):
    before = sorted(os.listdir(os.path.dirname(ca_dir)))
    result = ro.run("prepare", ca_dir, PASS, check_mode=True)
    assert result["changed"] and result["stage"] == "none"
    assert sorted(os.listdir(os.path.dirname(ca_dir))) == before


def test_a_damaged_state_file_is_an_error(ca_dir):
    with open(ro.state_path(ca_dir), "w") as handle:
        handle.write("{not json")
    with pytest.raises(PKIError, match="unreadable"):
        step(ca_dir, "status")


def test_ftps_pki_ca_refuses_to_create_a_third_ca_mid_rollover(ca_dir, tmp_path):
    """The module site.yml runs, driven by ansible itself: with <ca> gone between the swap's two
    renames it must fail, and create nothing, instead of making a new CA."""
    import sys

    from tests.unit.test_collection import ROOT, run

    step(ca_dir, "prepare")
    step(ca_dir, "trusted")
    os.rename(ca_dir, ca_dir + "-previous")  # the controller died between the two renames
    argv = [
        str(os.path.join(os.path.dirname(sys.executable), "ansible")),
        "localhost",
        "-m",
        "ftpskit.ftps.ftps_pki_ca",
        "-a",
        f"path={ca_dir}",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
    ]
    work = tmp_path / "run"
    work.mkdir()
    result = run(argv, work, ROOT / ".cache" / "collections")
    assert result.returncode != 0, result.stdout
    assert "a CA rollover is at stage 'reissue'" in result.stdout + result.stderr
    assert not os.path.exists(ca_dir)
