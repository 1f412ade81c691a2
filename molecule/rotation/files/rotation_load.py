#!/usr/bin/env python3
"""Continuous checksummed FTPS traffic to every server while playbooks/rotate.yml runs.

Test tool of the Molecule scenario ``rotation`` (runs on the client with the ftps-trust venv's
Python, which has ``ftpskit_common.client``). Per server, two threads until the stop file appears or
``--max-seconds`` pass (and at most ``--max-transfers`` each):

* ``session``: a new control connection for every transfer, alternating explicit (AUTH TLS) and
  implicit FTPS, verified with the system trust store (chain + hostname); log in, upload random
  bytes, download them, compare SHA-256, delete, quit;
* ``long``: one control connection kept for the whole run, on which slow (throttled) uploads and
  downloads follow each other, so transfers are in flight while the server reloads.

Each new connection resolves the server's name again, as a client with DNS does (the certificate
is verified for the name; a server brought back by ``podman stop`` and ``podman start`` in the
``faults`` scenario keeps the lab's planned address, which its test checks). If the resolver fails,
the connection uses the address it gave last and the failure is counted (``resolve_failures``):
the lab's names come from each container's /etc/hosts, so a resolver failure is not what this
measures. The name must resolve once at the start (retried for at most 60 s).

Every transfer is an event ``{server, address, kind, mode, start, end, ok, error}`` (epoch
seconds; ``address``: the one its connection used); the JSON written to ``--out`` holds the events,
the counts and every address each server had. The password comes from the
environment (ROTATION_LOAD_PASSWORD), never from the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import ftplib
import hashlib
import io
import json
import os
import socket
import threading
import time
from collections.abc import Callable

from ftpskit_common.client import FTPSClient, PinStore, compare_pin, make_context, parse_certificate


class Throttled(io.RawIOBase):
    """A readable payload that hands out ``chunk`` bytes per read, ``pause`` seconds apart."""

    def __init__(self, data: bytes, chunk: int, pause: float) -> None:
        self.data, self.pos, self.chunk, self.pause = data, 0, chunk, pause

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.pos >= len(self.data):
            return b""
        time.sleep(self.pause)
        end = self.pos + min(self.chunk, size if size > 0 else self.chunk)
        piece, self.pos = self.data[self.pos : end], end
        return piece


def lookup(name: str) -> str:
    """The name's first address, now (OSError if it does not resolve)."""
    return socket.getaddrinfo(name, 21, type=socket.SOCK_STREAM)[0][4][0]


def resolve(name: str, lookup: Callable[[str], str] = lookup) -> str:
    """The name's first address, retried for at most 60 s."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return lookup(name)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


class PinFailure(ftplib.Error):
    """The served certificate does not match the pin file."""


class Load:
    def __init__(
        self, args: argparse.Namespace, password: str, lookup: Callable[[str], str] = lookup
    ) -> None:
        self.args, self.password, self.lookup = args, password, lookup
        self.deadline = time.monotonic() + args.max_seconds
        self.events: list[dict] = []
        self.pins_checked = 0
        self.resolve_failures = 0
        self.lock = threading.Lock()
        # per server: the address its name resolved to last, and every address it had in order
        self.addresses = {server: resolve(server, lookup) for server in args.servers}
        self.seen = {server: [address] for server, address in self.addresses.items()}

    def address(self, server: str) -> str:
        """The server's address for a new connection: its name resolved now; if the resolver
        fails, the address it gave last (counted in ``resolve_failures``)."""
        try:
            address = self.lookup(server)
        except OSError:
            with self.lock:
                self.resolve_failures += 1
                return self.addresses[server]
        with self.lock:
            self.addresses[server] = address
            if address not in self.seen[server]:
                self.seen[server].append(address)
        return address

    def running(self) -> bool:
        return time.monotonic() < self.deadline and not os.path.exists(self.args.stop_file)

    def record(
        self, server: str, address: str, kind: str, mode: str, start: float, *, error: str = ""
    ) -> None:
        event = {
            "server": server,
            "address": address,
            "kind": kind,
            "mode": mode,
            "start": start,
            "end": time.time(),
            "ok": not error,
        }
        if error:
            event["error"] = error[:300]
        with self.lock:
            self.events.append(event)

    def connect(self, server: str, address: str, implicit: bool) -> FTPSClient:
        port = self.args.implicit_port if implicit else self.args.port
        client = FTPSClient(context=make_context(), implicit=implicit, timeout=30, server_hostname=server)
        client.connect(address, port)
        client.login(self.args.user, self.password)
        if self.args.pin_file:
            self.check_pin(client, server, port)
        client.prot_p()
        return client

    def check_pin(self, client: FTPSClient, server: str, port: int) -> None:
        """The served certificate against the fleet's pin file, re-read every session (the
        rotation rewrites it): no entry or no match is a failed transfer, counted as a pin failure."""
        der = client.peer_certificate()
        pin = PinStore(self.args.pin_file).get(server, port)
        if der is None or pin is None:
            raise PinFailure(f"pin: no certificate or no pin for {server}:{port} in {self.args.pin_file}")
        mismatches = compare_pin(parse_certificate(der), pin)
        if mismatches:
            raise PinFailure(f"pin mismatch for {server}:{port}: {'; '.join(mismatches)}")
        with self.lock:
            self.pins_checked += 1

    def round_trip(
        self, client: FTPSClient, payload: bytes, name: str, upload: io.RawIOBase | None, slow: float
    ) -> None:
        digest = hashlib.sha256(payload).hexdigest()
        client.storbinary(f"STOR {name}", upload or io.BytesIO(payload), blocksize=32768)
        got = hashlib.sha256()

        def take(block: bytes) -> None:
            got.update(block)
            if slow:
                time.sleep(slow)

        client.retrbinary(f"RETR {name}", take, blocksize=32768)
        client.delete(name)
        if got.hexdigest() != digest:
            raise ftplib.Error(  # noqa: S321 - an exception class, no FTP call
                f"checksum mismatch on {name}: sent {digest}, received {got.hexdigest()}"
            )

    def sessions(self, server: str) -> None:
        for i in range(self.args.max_transfers):
            if not self.running():
                return
            implicit = i % 2 == 1
            start = time.time()
            error = ""
            client = None
            address = self.address(server)
            try:
                client = self.connect(server, address, implicit)
                payload = os.urandom(self.args.size)
                self.round_trip(client, payload, f"rotation-load-{os.getpid()}-s-{i}", None, 0.0)
            except (OSError, EOFError, ftplib.Error) as exc:
                error = f"{type(exc).__name__}: {exc}"
            finally:
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.quit()
                    with contextlib.suppress(Exception):
                        client.close()
            self.record(
                server, address, "session", "implicit" if implicit else "explicit", start, error=error
            )
            time.sleep(self.args.pause)

    def long(self, server: str) -> None:
        client = None
        address = self.addresses[server]
        for i in range(self.args.max_transfers):
            if not self.running():
                break
            start = time.time()
            error = ""
            try:
                if client is None:
                    address = self.address(server)
                    client = self.connect(server, address, False)
                payload = os.urandom(self.args.long_size)
                upload = Throttled(payload, 32768, self.args.long_pause)
                self.round_trip(
                    client, payload, f"rotation-load-{os.getpid()}-l-{i}", upload, self.args.long_pause
                )
            except (OSError, EOFError, ftplib.Error) as exc:
                error = f"{type(exc).__name__}: {exc}"
                with contextlib.suppress(Exception):
                    client.close()
                client = None
            self.record(server, address, "long", "explicit", start, error=error)
        if client is not None:
            with contextlib.suppress(Exception):
                client.quit()

    def run(self) -> dict:
        threads = [
            threading.Thread(target=worker, args=(server,), daemon=True)
            for server in self.args.servers
            for worker in (self.sessions, self.long)
        ]
        started = time.time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.args.max_seconds + 120)
        counts: dict[str, dict[str, int]] = {}
        for event in self.events:
            entry = counts.setdefault(f"{event['server']}/{event['kind']}", {"ok": 0, "failed": 0})
            entry["ok" if event["ok"] else "failed"] += 1
        return {
            "started": started,
            "stopped": time.time(),
            "transfers": len(self.events),
            "failed": sum(1 for e in self.events if not e["ok"]),
            "pins_checked": self.pins_checked,
            "resolve_failures": self.resolve_failures,
            "addresses": self.seen,
            "pin_failures": sum(1 for e in self.events if "pin" in e.get("error", "")[:20]),
            "counts": counts,
            "errors": [e for e in self.events if not e["ok"]][:20],
            "events": self.events,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=lambda s: [x for x in s.split(",") if x], required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--port", type=int, default=21)
    parser.add_argument("--implicit-port", type=int, default=990)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument(
        "--pin-file", default="", help="check every session's certificate against this pin file"
    )
    parser.add_argument("--max-transfers", type=int, default=20000)
    parser.add_argument("--size", type=int, default=131072)
    parser.add_argument("--pause", type=float, default=0.2)
    parser.add_argument("--long-size", type=int, default=2097152)
    parser.add_argument("--long-pause", type=float, default=0.05)
    args = parser.parse_args()
    password = os.environ.get("ROTATION_LOAD_PASSWORD", "")
    result = Load(args, password).run()
    tmp = f"{args.out}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    os.replace(tmp, args.out)
    print(json.dumps({k: result[k] for k in ("transfers", "failed", "counts")}))
    return 0 if result["failed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
