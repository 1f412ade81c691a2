"""Pins, the pin store and the trust decisions (no network)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat

import pytest

from ftpskit_common.client import (
    PinStore,
    PinStoreError,
    compare_pin,
    hostname_matches,
    server_key,
)
from ftpskit_common.trust import decide, parse_target, render_side_by_side
from ftpskit_common.x509 import (
    normalize_fingerprint,
    normalize_spki,
    parse_certificate,
)
from tests.certs import make_ca, make_leaf

FP = "AB:" * 31 + "CD"
FP_HEX = FP.replace(":", "").lower()


@pytest.mark.parametrize("spelling", [FP, FP.lower(), FP_HEX, FP_HEX.upper(), f"sha256:{FP_HEX}", f" {FP} "])
def test_fingerprint_spellings(spelling: str) -> None:
    assert normalize_fingerprint(spelling) == FP_HEX


@pytest.mark.parametrize("bad", ["", "AB:CD", "zz" * 32, FP_HEX + "00"])
def test_bad_fingerprints(bad: str) -> None:
    with pytest.raises(ValueError, match="not a SHA-256 fingerprint"):
        normalize_fingerprint(bad)


def test_spki_base64_and_hex_agree() -> None:
    digest = hashlib.sha256(b"key").digest()
    b64 = base64.b64encode(digest).decode()
    assert normalize_spki(b64) == b64
    assert normalize_spki(f"sha256/{b64}") == b64
    assert normalize_spki(digest.hex()) == b64
    assert normalize_spki(digest.hex(":")) == b64
    with pytest.raises(ValueError, match="SPKI"):
        normalize_spki("bm90IDMyIGJ5dGVz")  # valid base64, wrong length


@pytest.fixture(scope="module")
def two_certs() -> tuple[dict, dict]:
    ca = make_ca()
    return parse_certificate(make_leaf(ca).der), parse_certificate(make_leaf(ca).der)


def test_compare_pin(two_certs) -> None:
    a, b = two_certs
    assert compare_pin(a, {"fingerprint_sha256": a["fingerprint_sha256"]}) == []
    assert compare_pin(a, {"spki_sha256": a["spki_sha256"]}) == []
    assert compare_pin(a, {"fingerprint_sha256": a["fingerprint_sha256"].lower().replace(":", "")}) == []
    both = compare_pin(a, {"fingerprint_sha256": b["fingerprint_sha256"], "spki_sha256": b["spki_sha256"]})
    assert len(both) == 2
    assert both[0].startswith("SHA-256 fingerprint is ")
    assert both[1].startswith("SPKI pin is ")
    # Each key given must match: a right SPKI does not excuse a wrong fingerprint.
    assert (
        len(compare_pin(a, {"fingerprint_sha256": b["fingerprint_sha256"], "spki_sha256": a["spki_sha256"]}))
        == 1
    )
    with pytest.raises(ValueError, match="needs"):
        compare_pin(a, {})


@pytest.mark.parametrize(
    ("host", "port", "key"),
    [("FTP.Example.test", 21, "ftp.example.test:21"), ("::1", 990, "[::1]:990"), ("[::1]", 21, "[::1]:21")],
)
def test_server_key(host: str, port: int, key: str) -> None:
    assert server_key(host, port) == key


def test_store_round_trip_atomic_and_private(tmp_path, two_certs) -> None:
    a, _b = two_certs
    path = tmp_path / "cfg" / "ftps-trust" / "known_servers.json"
    store = PinStore(str(path))
    assert store.get("h", 21) is None
    entry = store.put("H", 21, a)
    store.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["known_servers.json"]  # no temp file left
    again = PinStore(str(path))
    assert again.get("h", 21) == entry
    assert again.get("h", 21)["fingerprint_sha256"] == a["fingerprint_sha256"]
    assert compare_pin(a, again.get("h", 21)) == []
    data = json.loads(path.read_text())
    assert data["version"] == 1
    assert set(data["servers"]) == {"h:21"}
    assert again.remove("h", 21) is True
    assert again.remove("h", 21) is False


def test_store_save_failure_keeps_old_file(tmp_path, two_certs, monkeypatch) -> None:
    a, b = two_certs
    path = tmp_path / "known_servers.json"
    store = PinStore(str(path))
    store.put("h", 21, a)
    store.save()
    before = path.read_text()
    store.put("h", 21, b)

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(PinStoreError, match="disk full"):
        store.save()
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["known_servers.json"]


@pytest.mark.parametrize(
    "content", ["not json", "[]", '{"version": 2, "servers": {}}', '{"version": 1, "servers": []}']
)
def test_store_rejects_bad_files(tmp_path, content: str) -> None:
    path = tmp_path / "known_servers.json"
    path.write_text(content)
    with pytest.raises(PinStoreError, match=str(path)):
        PinStore(str(path))


@pytest.mark.parametrize(
    ("ca_verified", "saved", "same", "status"),
    [
        (True, False, None, "trusted_ca"),
        (False, False, None, "unknown"),
        (False, True, True, "pinned"),
        (True, True, True, "pinned"),
        (False, True, False, "changed"),
        # A pin is authoritative: a changed certificate is flagged even if the CA vouches for it.
        (True, True, False, "changed"),
    ],
)
def test_decide(two_certs, ca_verified: bool, saved: bool, same: bool | None, status: str) -> None:
    a, b = two_certs
    entry = None
    if saved:
        store = PinStore("/nonexistent/never-written.json")
        entry = store.put("h", 21, a if same else b)
    got, differences = decide(ca_verified, entry, a)
    assert got == status
    assert bool(differences) is (status == "changed")


@pytest.mark.parametrize(
    ("target", "port", "implicit", "expected"),
    [
        ("ftp.example.test", None, False, ("ftp.example.test", 21)),
        ("ftp.example.test", None, True, ("ftp.example.test", 990)),
        ("ftp.example.test:2121", None, False, ("ftp.example.test", 2121)),
        ("ftp.example.test", 2121, False, ("ftp.example.test", 2121)),
        ("[::1]:990", None, False, ("::1", 990)),
        ("::1", None, False, ("::1", 21)),
        ("[::1]", None, True, ("::1", 990)),
        ("[2001:db8::5]:2121", 2121, False, ("2001:db8::5", 2121)),
        ("10.213.0.5:21", 21, False, ("10.213.0.5", 21)),
    ],
)
def test_parse_target(target, port, implicit, expected) -> None:
    assert parse_target(target, port, implicit) == expected


@pytest.mark.parametrize(
    ("target", "port", "says"),
    [
        ("h:x", None, "invalid port"),
        ("h:70000", None, "invalid port"),
        ("h:21", 990, "contradicts"),
        (":21", None, "no host"),
        ("h", 70000, "not 1..65535"),
        # Issue 25: brackets must be balanced and hold an IPv6 address.
        ("[::1", None, "'[' without ']'"),
        ("[::1:21", None, "'[' without ']'"),
        ("[::1]21", None, "after ']'"),
        ("[ftp.example.test]:21", None, "not an IPv6 address"),
        ("[]:21", None, "not an IPv6 address"),
        ("::1]:21", None, "brackets go around"),
        ("ftp.example.test]", None, "brackets go around"),
        ("::1::2", None, "neither host:port nor an IPv6 address"),
        ("h:21:22", None, "neither host:port nor an IPv6 address"),
    ],
)
def test_parse_target_errors(target: str, port, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_target(target, port, False)


def test_a_malformed_target_is_a_usage_error(capsys) -> None:
    """`ftps-trust '[::1'` exits 2 with a message and never connects (it used to try ::1:21)."""
    from ftpskit_common.trust import EXIT_USAGE, main

    assert main(["[::1", "--system-pin-file", ""]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "usage: ftps-trust" in err
    assert "ftps-trust: error: '[::1': '[' without ']'" in err


@pytest.mark.parametrize(
    ("name", "sans", "match"),
    [
        ("ftp.example.test", ["DNS:ftp.example.test"], True),
        ("FTP.example.test.", ["DNS:ftp.example.test"], True),
        ("a.example.test", ["DNS:*.example.test"], True),
        ("a.b.example.test", ["DNS:*.example.test"], False),
        ("example.test", ["DNS:*.example.test"], False),
        ("127.0.0.1", ["DNS:localhost", "IP:127.0.0.1"], True),
        ("127.0.0.1", ["DNS:127.0.0.1"], False),
        ("::1", ["IP:0:0:0:0:0:0:0:1"], True),
        ("ftp.example.test", [], False),
    ],
)
def test_hostname_matches(name: str, sans: list[str], match: bool) -> None:
    assert hostname_matches(name, sans) is match


def test_side_by_side_marks_only_differing_rows(two_certs) -> None:
    a, b = two_certs
    saved = PinStore("/nonexistent/x.json").put("h", 21, a, accepted_at="2026-01-01T00:00:00Z")
    table = render_side_by_side(saved, b, 120)
    assert "SAVED (accepted 2026-01-01T00:00:00Z)" in table
    assert "PRESENTED NOW" in table
    marked = {line[2:14].strip() for line in table.splitlines() if line.startswith("!")}
    assert {"SHA-256", "SPKI pin", "Serial"} <= marked
    assert "Subject" not in marked and "Issuer" not in marked  # same CA, same names
    same = render_side_by_side(PinStore("/nonexistent/x.json").put("h", 21, b), b, 120)
    assert not any(line.startswith("!") for line in same.splitlines())


def test_side_by_side_names_where_a_kit_pin_came_from(two_certs) -> None:
    a, b = two_certs
    kit_pin = {"fingerprint_sha256": a["fingerprint_sha256"], "source": "ftps_pki_certificate of ftp1"}
    assert "SAVED (from ftps_pki_certificate of ftp1)" in render_side_by_side(kit_pin, b, 120)


def test_unparsable_certificate_still_yields_its_fingerprint() -> None:
    from ftpskit_common.client import (
        _fields_or_fingerprint,
    )

    fields = _fields_or_fingerprint(b"\x30\x03\x02\x01\x01")
    assert fields["fingerprint_sha256"] == hashlib.sha256(b"\x30\x03\x02\x01\x01").hexdigest()
    assert "three elements" in fields["parse_error"]
    assert compare_pin(fields, {"spki_sha256": base64.b64encode(b"k" * 32).decode()}) != []


# ---- current + next (RFC 7671 8.1): the fleet announces its next key before serving it ----


@pytest.fixture(scope="module")
def three_certs() -> tuple[dict, dict, dict]:
    ca = make_ca()
    return tuple(parse_certificate(make_leaf(ca).der) for _ in range(3))


def test_announced_next_key_matches_unknown_key_does_not(three_certs) -> None:
    current, nxt, foreign = three_certs
    entry = {
        "fingerprint_sha256": current["fingerprint_sha256"],
        "spki_sha256": current["spki_sha256"],
        "next_spki_sha256": [nxt["spki_sha256"]],
    }
    assert compare_pin(current, entry) == []  # the current certificate, as before
    assert compare_pin(nxt, entry) == []  # a certificate for the announced next key
    refused = compare_pin(foreign, entry)  # a key the fleet never announced
    assert refused and "nor is it an announced next key" in refused[-1]
    assert decide(True, entry, nxt) == ("pinned", [])
    assert decide(True, entry, foreign)[0] == "changed"
    # a single pin and the hex spelling are accepted too
    hexed = base64.b64decode(nxt["spki_sha256"]).hex()
    assert compare_pin(nxt, {**entry, "next_spki_sha256": hexed}) == []
    with pytest.raises(ValueError, match="list"):
        compare_pin(foreign, {**entry, "next_spki_sha256": {"x": 1}})


def test_pin_file_without_next_pins_still_works(tmp_path, three_certs) -> None:
    """A version 1 pin file written before next pins existed reads and checks as it did."""
    current, nxt, _foreign = three_certs
    path = tmp_path / "known_servers.json"
    old = {"fingerprint_sha256": current["fingerprint_sha256"], "spki_sha256": current["spki_sha256"]}
    path.write_text(json.dumps({"version": 1, "servers": {"h:21": old}}))
    store = PinStore(str(path))
    assert compare_pin(current, store.get("h", 21)) == []
    assert compare_pin(nxt, store.get("h", 21)) != []
    path.write_text(
        json.dumps({"version": 1, "servers": {"h:21": {**old, "next_spki_sha256": [nxt["spki_sha256"]]}}})
    )
    assert compare_pin(nxt, PinStore(str(path)).get("h", 21)) == []
