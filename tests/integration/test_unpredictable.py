"""What a client sees drawn at random cannot be predicted, tested as an attacker would (docs/ftpsd.md,
"Data connections only from the control peer"): against a running ftpsd, not by the source of its
randomness.

* Two daemons whose Python ``random`` is seeded identically (a ``sitecustomize`` on their
  PYTHONPATH, before ftpsd is imported), one after the other on the same passive range, answer 40
  ``PASV`` each with different port sequences, and give different STOU names and instance ids.
  pyftpdlib drew passive ports with the global Mersenne Twister (``random.randint``): seeded, its
  sequence repeats exactly, and observed replies reveal its state. A switch back to ``random`` or
  any seeded generator makes both daemons answer alike and fails here.
* Over a range of 16 ports, 200 consecutive ``PASV``: every port is used, and no port is followed
  by the same port every time (a port is not a fixed function of the previous one).

Every other random draw in src/ftpsd (STOU names, upload part names, the instance id, the limits
table's key, the dummy hash of a missing user) uses ``secrets``/``os.urandom``; the global
``random`` module is imported for ``random.SystemRandom`` only (test_only_the_kernels_generator).
"""

from __future__ import annotations

import ast
import collections
import io
import itertools
import json
import os
import pathlib
import re

from tests.integration.conftest import Server, _free_range
from tests.paths import ROOT

SEED_ENV = "FTPSKIT_TEST_RANDOM_SEED"
MARK_ENV = "FTPSKIT_TEST_RANDOM_MARK"
_SITECUSTOMIZE = f"""import os, random
random.seed(int(os.environ[{SEED_ENV!r}]))
with open(os.environ[{MARK_ENV!r}], "w") as mark:
    mark.write("seeded")
"""
PASVS = 40
STOUS = 4


def _pasv_port(reply: str) -> int:
    numbers = re.fullmatch(r"227 Entering passive mode \((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)\.", reply)
    assert numbers, reply
    high, low = int(numbers[5]), int(numbers[6])
    return high * 256 + low


def _seeded_env(tmp_path: pathlib.Path, name: str) -> dict[str, str]:
    site = tmp_path / "seeded-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, SEED_ENV: "20261207", MARK_ENV: str(tmp_path / f"{name}.seeded")}


def _observe(server: Server) -> tuple[list[int], set[str], str]:
    """40 PASV ports, then the names of 4 STOU uploads and the daemon's instance id."""
    ftp = server.client()
    try:
        ports = [_pasv_port(ftp.sendcmd("PASV")) for _ in range(PASVS)]
        for _ in range(STOUS):
            ftp.storbinary("STOU", io.BytesIO(b"x"))
        ftp.quit()
    finally:
        ftp.close()
    names = {path.name for path in server.homes["alice"].iterdir()}
    assert len(names) == STOUS, names
    instance = json.loads((server.runtime_dir / "daemon.json").read_text())["instance"]
    return ports, names, instance


def test_identically_seeded_daemons_draw_differently(make_server, tmp_path: pathlib.Path) -> None:
    first, last = _free_range(20)
    seen = {}
    for name in ("a", "b"):
        server = make_server(passive_ports=[first, last], env=_seeded_env(tmp_path, name))
        seen[name] = _observe(server)
        server.stop()  # one after the other: the same range, the same (seeded) state at start
        assert (tmp_path / f"{name}.seeded").read_text() == "seeded"  # the seed took effect
    (ports_a, names_a, instance_a), (ports_b, names_b, instance_b) = seen["a"], seen["b"]
    assert all(first <= port <= last for port in ports_a + ports_b)
    assert ports_a != ports_b, "the same seed gave the same passive ports: a seeded generator"
    assert not names_a & names_b, "the same seed gave the same STOU names"
    assert instance_a != instance_b


def test_a_port_is_not_a_function_of_the_previous_one(make_server) -> None:
    first, last = _free_range(16)
    server = make_server(passive_ports=[first, last])
    ftp = server.client()
    try:
        ports = [_pasv_port(ftp.sendcmd("PASV")) for _ in range(200)]
        ftp.quit()
    finally:
        ftp.close()
    assert set(ports) == set(range(first, last + 1)), sorted(collections.Counter(ports).items())
    successors = collections.defaultdict(list)
    for before, after in itertools.pairwise(ports):
        successors[before].append(after)
    fixed = {port: after for port, after in successors.items() if len(after) >= 3 and len(set(after)) == 1}
    assert not fixed, f"a port always followed by the same one: {fixed}"


def test_only_the_kernels_generator() -> None:
    """In src/ftpsd, ``random`` is used only for ``random.SystemRandom`` (no seeded draws of
    ports, names or tokens); ``secrets`` and ``os.urandom`` serve the rest."""
    uses = []
    for path in sorted((ROOT / "src" / "ftpsd").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "random":
                uses.append(f"{path.name}: from random import {[a.name for a in node.names]}")
            named = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            if named and node.value.id == "random" and node.attr != "SystemRandom":
                uses.append(f"{path.name}:{node.lineno}: random.{node.attr}")
    assert not uses, uses
