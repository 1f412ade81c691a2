"""The http-01 side of ACME on a server: a short-lived responder and its firewall window.

Standard library only (it runs on the servers). The responder is :data:`RESPONDER_SOURCE`, a
tiny HTTP server that answers exactly ``GET /.well-known/acme-challenge/<token>`` for the tokens
of one order and 404 for anything else. It runs as a transient systemd unit with a hard time
limit (``RuntimeMaxSec``); the unit's ``ExecStopPost`` closes the firewall window, so the port is
closed again when the run ends, fails, or the controller disappears mid-run.

The window is one rule in the kit's own nftables table (ftps_firewall's ``inet ftps_kit``,
chain ``input``), inserted first and found again by its comment. Without that table there is no
kit firewall to open (ftps_firewall has not run yet, or another firewall is used: docs/pki.md).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.error
from collections.abc import Callable

from ansible.module_utils.urls import open_url

UNIT = "ftps-kit-acme-http01.service"
RUN_DIR = "/run/ftps-kit-acme"
COMMENT = "ftps-kit acme http-01 window"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
NFT = "/usr/sbin/nft"

RESPONDER_SOURCE = r'''#!/usr/bin/python3
"""ftps-kit ACME http-01 responder: serves /.well-known/acme-challenge/<token> from one directory.

Written by the ftps_pki_acme_http01 module; started as the transient unit ftps-kit-acme-http01
with a hard time limit. `--close-window` removes the kit's nftables window rule (ExecStopPost).
"""
import argparse
import http.server
import os
import re
import socket
import subprocess
import sys

PREFIX = "/.well-known/acme-challenge/"
TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def close_window(nft, table, chain, comment):
    try:
        listing = subprocess.run([nft, "-a", "list", "chain", "inet", table, chain],
                                 capture_output=True, text=True, check=False).stdout
    except OSError:
        return 0
    marker = 'comment "%s"' % comment
    handles = [line.rsplit("# handle ", 1)[1].strip() for line in listing.splitlines()
               if marker in line and "# handle " in line]
    for handle in handles:
        subprocess.run([nft, "delete", "rule", "inet", table, chain, "handle", handle], check=False)
    return len(handles)


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "ftps-kit-acme"
    sys_version = ""

    def _answer(self, body_wanted):
        path = self.path.split("?", 1)[0]
        token = path[len(PREFIX):] if path.startswith(PREFIX) else ""
        body = None
        if TOKEN.match(token):
            try:
                with open(os.path.join(self.server.token_dir, token), "rb") as handle:
                    body = handle.read()
            except OSError:
                body = None
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body_wanted:
            self.wfile.write(body)

    def do_GET(self):
        self._answer(True)

    def do_HEAD(self):
        self._answer(False)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def serve(bind, port, token_dir):
    family = socket.AF_INET6 if (bind == "" or ":" in bind) else socket.AF_INET
    address = bind or "::"
    try:
        Server.address_family = family
        httpd = Server((address, port), Handler)
    except OSError:
        if bind:
            raise
        Server.address_family = socket.AF_INET
        httpd = Server(("0.0.0.0", port), Handler)
    httpd.token_dir = token_dir
    httpd.serve_forever()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", default="")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--dir")
    parser.add_argument("--close-window", action="store_true")
    parser.add_argument("--nft", default="/usr/sbin/nft")
    parser.add_argument("--table", default="ftps_kit")
    parser.add_argument("--chain", default="input")
    parser.add_argument("--comment", default="")
    args = parser.parse_args()
    if args.close_window:
        close_window(args.nft, args.table, args.chain, args.comment)
        return 0
    serve(args.bind, args.port, args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


class Http01Error(Exception):
    """A problem with the responder, phrased for an operator."""


# Commands run through the module's AnsibleModule.run_command (argv lists, never a shell):
# main() calls set_runner(module.run_command); the unit tests give their own.
Runner = Callable[[list[str]], tuple[int, str, str]]
_runner: list[Runner] = []


def set_runner(run: Runner) -> None:
    """Run commands with ``run(argv) -> (rc, stdout, stderr)``: the module's run_command."""
    _runner[:] = [run]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    if not _runner:
        raise RuntimeError("no command runner: the module calls set_runner(module.run_command) first")
    rc, out, err = _runner[0](argv)
    return subprocess.CompletedProcess(argv, rc, out, err)


# --------------------------------------------------------------------------------------------
# the firewall window


def window_rules(table: str, chain: str, listing: str | None = None) -> list[str]:
    """Handles of the window rules in ``inet <table> <chain>`` (from ``nft -a list chain``)."""
    if listing is None:
        if not os.path.exists(NFT):
            return []
        proc = _run([NFT, "-a", "list", "chain", "inet", table, chain])
        if proc.returncode != 0:
            return []
        listing = proc.stdout
    marker = f'comment "{COMMENT}"'
    return [
        line.rsplit("# handle ", 1)[1].strip()
        for line in listing.splitlines()
        if marker in line and "# handle " in line
    ]


def firewall_present(table: str, chain: str) -> bool:
    return os.path.exists(NFT) and _run([NFT, "list", "chain", "inet", table, chain]).returncode == 0


def open_window(table: str, chain: str, port: int) -> bool:
    """Insert the window rule first in the kit's chain. False when there is no kit firewall."""
    if not firewall_present(table, chain):
        return False
    close_window(table, chain)
    proc = _run(
        [
            NFT,
            "insert",
            "rule",
            "inet",
            table,
            chain,
            "tcp",
            "dport",
            str(port),
            "accept",
            "comment",
            f'"{COMMENT}"',
        ]
    )
    if proc.returncode != 0:
        raise Http01Error(
            f"could not open TCP port {port} in nftables table inet {table}: {proc.stderr.strip()}"
        )
    return True


def close_window(table: str, chain: str) -> int:
    handles = window_rules(table, chain)
    for handle in handles:
        _run([NFT, "delete", "rule", "inet", table, chain, "handle", handle])
    return len(handles)


# --------------------------------------------------------------------------------------------
# the responder


def unit_active() -> bool:
    return _run(["systemctl", "is-active", "--quiet", UNIT]).returncode == 0


def stop_responder() -> bool:
    if unit_active():
        _run(["systemctl", "stop", UNIT])
        return True
    _run(["systemctl", "reset-failed", UNIT])
    return False


def write_tokens(tokens: list[dict[str, str]], run_dir: str = RUN_DIR) -> str:
    token_dir = os.path.join(run_dir, "tokens")
    shutil.rmtree(token_dir, ignore_errors=True)
    os.makedirs(token_dir, mode=0o755, exist_ok=True)
    os.chmod(run_dir, 0o755)  # noqa: S103 - the tokens are public by design (the CA fetches them)
    for item in tokens:
        token = item["token"]
        if not TOKEN_RE.match(token):
            raise Http01Error(f"the CA sent a token that is not base64url: {token!r}")
        with open(os.path.join(token_dir, token), "w", encoding="ascii") as handle:
            handle.write(item["key_authorization"])
    script = os.path.join(run_dir, "responder.py")
    with open(script, "w", encoding="utf-8") as handle:
        handle.write(RESPONDER_SOURCE)
    os.chmod(script, 0o755)  # noqa: S103 - a root-owned script, readable like any system script
    return token_dir


def responder_command(python: str, script: str, *, bind: str, port: int, token_dir: str) -> list[str]:
    """The responder's command line (RESPONDER_SOURCE written to ``script``): the one place its
    options are spelled, for the systemd unit and the tests alike."""
    return [python, "-I", script, "--bind", bind, "--port", str(port), "--dir", token_dir]


def start_responder(
    *, bind: str, port: int, timeout: int, table: str, chain: str, run_dir: str = RUN_DIR
) -> None:
    script = os.path.join(run_dir, "responder.py")
    close = f"{script} --close-window --table {table} --chain {chain} --comment '{COMMENT}'"
    argv = [
        "systemd-run",
        f"--unit={UNIT}",
        "--description=ftps-kit ACME http-01 responder",
        "--collect",
        "--quiet",
        f"--property=RuntimeMaxSec={timeout}",
        f"--property=ExecStopPost=/usr/bin/python3 -I {close}",
        "--property=PrivateTmp=yes",
        "--property=ProtectHome=yes",
        "--property=NoNewPrivileges=yes",
        *responder_command(
            "/usr/bin/python3", script, bind=bind, port=port, token_dir=os.path.join(run_dir, "tokens")
        ),
    ]
    proc = _run(argv)
    if proc.returncode != 0:
        raise Http01Error(f"could not start the http-01 responder ({UNIT}): {proc.stderr.strip()}")


def self_check(tokens: list[dict[str, str]], bind: str, port: int, wait: float = 10.0) -> None:
    """GET every token from the server itself: the responder must answer before the CA asks."""
    host = bind if bind and bind not in ("0.0.0.0", "::") else "127.0.0.1"  # noqa: S104 - a comparison
    if ":" in host:
        host = f"[{host}]"
    deadline = time.monotonic() + wait
    for item in tokens:
        url = f"http://{host}:{port}/.well-known/acme-challenge/{item['token']}"
        while True:
            try:
                with open_url(url, timeout=2, validate_certs=False, use_proxy=False) as response:
                    body = response.read().decode()
                if body == item["key_authorization"]:
                    break
                raise Http01Error(f"the responder on port {port} serves something else than the token")
            except (urllib.error.URLError, OSError, ConnectionError) as exc:
                if time.monotonic() > deadline:
                    status = _run(["systemctl", "status", "--no-pager", "--lines=5", UNIT]).stdout.strip()
                    raise Http01Error(
                        f"the http-01 responder does not answer on port {port} ({exc}); is the port "
                        f"taken by another service (ftps_pki_acme_http01_port)? {status}"
                    ) from exc
                time.sleep(0.2)


def present(
    tokens: list[dict[str, str]],
    *,
    bind: str,
    port: int,
    timeout: int,
    table: str,
    chain: str,
    firewall: bool,
    run_dir: str = RUN_DIR,
) -> dict[str, object]:
    stop_responder()
    write_tokens(tokens, run_dir)
    opened = open_window(table, chain, port) if firewall else False
    try:
        start_responder(bind=bind, port=port, timeout=timeout, table=table, chain=chain, run_dir=run_dir)
        self_check(tokens, bind, port)
    except BaseException:
        absent(table=table, chain=chain, run_dir=run_dir)
        raise
    return {"window_opened": opened, "unit": UNIT, "tokens": len(tokens)}


def absent(*, table: str, chain: str, run_dir: str = RUN_DIR) -> dict[str, object]:
    stopped = stop_responder()
    closed = close_window(table, chain)
    existed = os.path.isdir(run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"stopped": stopped, "window_rules_removed": closed, "changed": bool(stopped or closed or existed)}
