"""One home for the shared code (ftpskit_common), one fingerprint format, one load per reload.

- ``plugins/module_utils/ftpskit_common`` is standard library only and imports its own modules
  relatively, so Ansible's module finder, the ``ftpskit-common`` wheel and the daemon all use the
  same files; nothing anywhere falls back with ``except ImportError`` between two homes.
- ``src/ftpsd`` has no import cycle (``config`` <-> ``tls`` was one).
- Every producer of a SHA-256 fingerprint (the X.509 reader, the daemon's TLS material, its status
  files and metrics, the PKI facts) writes the same string; old pin files are read and rewritten.
- A reload reads each file once: the objects it validated are the objects it serves.
"""

from __future__ import annotations

import ast
import builtins
import json
import pathlib
import sys

import pytest
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import certificate_facts
from cryptography.hazmat.primitives import hashes, serialization

from ftpsd import status, tls
from ftpskit_common.client import PinStore, compare_pin
from ftpskit_common.passwd import dump_users, hash_password
from ftpskit_common.x509 import (
    normalize_fingerprint,
    parse_certificate,
    sha256_fingerprint,
)
from tests.certs import TestCA, point_current, write_generation
from tests.paths import ROOT

SHARED = ROOT / "plugins" / "module_utils" / "ftpskit_common"
DAEMON = ROOT / "src" / "ftpsd"


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
    """(level, module) of every import in a file, at any depth (lazy imports count too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend((0, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


@pytest.mark.parametrize("path", sorted(SHARED.glob("*.py")), ids=lambda p: p.name)
def test_shared_package_is_stdlib_only_with_relative_imports(path: pathlib.Path) -> None:
    for level, module in _imports(path):
        if level:
            assert level == 1, f"{path.name}: import from outside the package ({'.' * level}{module})"
            continue
        top = module.split(".")[0]
        assert top == "__future__" or top in sys.stdlib_module_names, f"{path.name}: imports {module}"


@pytest.mark.parametrize(
    "path",
    sorted([*SHARED.glob("*.py"), *DAEMON.glob("*.py"), *(ROOT / "plugins").glob("*/*.py")]),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_import_shims(path: pathlib.Path) -> None:
    """No ``try: from <our code> import x except ImportError: from <our other copy> import x``:
    one home, one import path (guards around optional third-party libraries are fine)."""
    ours = ("ansible_collections.ftpskit", "ftpsd", "ftpskit_common")
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Try):
            continue
        guarded = [
            n.module if isinstance(n, ast.ImportFrom) else n.names[0].name
            for n in node.body
            if isinstance(n, ast.Import | ast.ImportFrom)
        ]
        caught = [ast.unparse(h.type) for h in node.handlers if h.type is not None]
        if any("ImportError" in c for c in caught):
            assert not [m for m in guarded if m and m.startswith(ours)], (
                f"{path}: import shim at line {node.lineno}"
            )
    if path.parent == DAEMON:
        assert not [m for _l, m in _imports(path) if m.startswith("ansible")], path


def test_no_symlinks_in_the_collection_code() -> None:
    links = [p for p in (ROOT / "plugins").rglob("*") if p.is_symlink()]
    links += [p for p in (ROOT / "src").rglob("*") if p.is_symlink()]
    assert links == []


def test_daemon_has_no_import_cycle() -> None:
    modules = {p.stem: p for p in DAEMON.glob("*.py")}
    graph = {
        name: {
            m.split(".")[1]
            for _level, m in _imports(path)
            if m.startswith("ftpsd.") and m.split(".")[1] in modules and m.split(".")[1] != name
        }
        for name, path in modules.items()
    }

    def cycle_from(start: str, node: str, seen: tuple[str, ...]) -> tuple[str, ...] | None:
        for nxt in sorted(graph[node]):
            if nxt == start:
                return (*seen, nxt)
            if nxt not in seen:
                found = cycle_from(start, nxt, (*seen, nxt))
                if found:
                    return found
        return None

    cycles = [c for name in sorted(graph) if (c := cycle_from(name, name, (name,)))]
    assert cycles == []


# --- one fingerprint format --------------------------------------------------------------------
def test_every_producer_writes_the_same_fingerprint() -> None:
    issued = TestCA().issue()
    der = issued.cert.public_bytes(serialization.Encoding.DER)
    one = sha256_fingerprint(der)
    assert len(one) == 64 and one == one.lower() and ":" not in one
    assert parse_certificate(der)["fingerprint_sha256"] == one  # probe, ftps-trust, report, pins
    assert tls.fingerprint(issued.cert) == one  # the daemon's log lines and READY status
    assert status.certificate_summary(issued.cert)["fingerprint"] == one  # status files, metrics
    assert certificate_facts(issued.cert)["fingerprint_sha256"] == one  # ftps_pki facts
    # A fingerprint pasted from `openssl x509 -fingerprint -sha256` reads as the same.
    assert normalize_fingerprint(issued.cert.fingerprint(hashes.SHA256()).hex(":").upper()) == one


def test_old_pin_files_are_read_and_rewritten_in_the_one_format(tmp_path: pathlib.Path) -> None:
    issued = TestCA().issue()
    der = issued.cert.public_bytes(serialization.Encoding.DER)
    fields = parse_certificate(der)
    old = issued.cert.fingerprint(hashes.SHA256()).hex(":").upper()  # what earlier versions saved
    path = tmp_path / "known_servers.json"
    entry = {"fingerprint_sha256": old, "spki_sha256": fields["spki_sha256"]}
    path.write_text(json.dumps({"version": 1, "servers": {"ftp1:21": entry}}))
    store = PinStore(str(path))
    assert compare_pin(fields, store.get("ftp1", 21)) == []
    store.save()
    saved = json.loads(path.read_text())["servers"]["ftp1:21"]
    assert saved["fingerprint_sha256"] == fields["fingerprint_sha256"]


# --- a reload reads each file once -------------------------------------------------------------
def test_load_reads_each_file_once(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ftpsd.daemon import load_everything

    ca = TestCA()
    pki = tmp_path / "pki"
    point_current(pki, write_generation(pki, "gen-1", ca.issue(), ca))
    (tmp_path / "home").mkdir()
    users = tmp_path / "users.json"
    dump_users(
        [{"name": "alice", "hash": hash_password("pw", "pbkdf2-sha256"), "home": str(tmp_path / "home")}],
        str(users),
    )
    config = tmp_path / "ftpsd.toml"
    config.write_text(
        f'[tls]\ncertfile = "{pki}/current/cert.pem"\nkeyfile = "{pki}/current/key.pem"\n'
        f'chainfile = "{pki}/current/chain.pem"\n[users]\nfile = "{users}"\n'
        f'[logging]\nxferlog = "{tmp_path}/xferlog"\n'
    )
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        opened.append(pathlib.Path(file).name if isinstance(file, str | pathlib.Path) else "?")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    loaded = load_everything(str(config))
    monkeypatch.undo()
    assert loaded.users == 1
    for name in ("ftpsd.toml", "cert.pem", "key.pem", "chain.pem", "users.json"):
        assert opened.count(name) == 1, (name, opened)


def test_no_test_imports_the_shared_package_under_two_names() -> None:
    """``ftpskit_common`` and ``ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common``
    are the same files loaded twice: a test mixing them compares classes of two module objects
    (an exception of one is not an instance of the other's). Each test file picks one."""
    collection = "ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common"
    mixed = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            module = node.module or "" if isinstance(node, ast.ImportFrom) else ""
            if module == "ftpskit_common" or module.startswith("ftpskit_common."):
                names.add("ftpskit_common")
            elif module == collection or module.startswith(collection + "."):
                names.add(collection)
        if len(names) > 1:
            mixed.append(str(path.relative_to(ROOT)))
    assert mixed == []
