"""``ftps-trust HOST[:PORT]``: look at an FTPS server's certificate and decide whether to trust it.

Like ssh with an unknown host key: the command shows the certificate's fields, says whether it
chains to a trusted CA, and when it does not, asks whether to trust it. The answer is saved in a
pin file (``~/.config/ftps-trust/known_servers.json``); the next run does not ask. When a saved
server presents a different certificate, the command refuses it and shows the saved and the
presented fields side by side until the person accepts the new one.

Exit codes (also in ``--help`` and docs/client.md):

====  ===========================================================================
0     trusted: chains to a trusted CA, matches the saved pin, or accepted now
1     not trusted: the person answered no, or no terminal to ask and no ``--yes``
2     usage error
3     no FTPS server reachable: connection failed, TLS refused (plaintext only)
4     the certificate changed since it was saved, and the change was not accepted
5     the pin file cannot be read or written
====  ===========================================================================
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any, TextIO

from .client import (
    PinStore,
    PinStoreError,
    ProbeError,
    canonical_host,
    compare_pin,
    describe_key,
    hostname_matches,
    printable,
    probe,
    server_key,
)

EXIT_TRUSTED, EXIT_NOT_TRUSTED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_CHANGED, EXIT_PIN_FILE = 0, 1, 2, 3, 4, 5
CERTIFICATE_KINDS = ("unknown_ca", "hostname_mismatch", "expired", "not_yet_valid", "verify")

EPILOG = """\
exit codes:
  0  trusted: chains to a trusted CA, matches the saved pin, or accepted now
  1  not trusted: answered no, or no terminal to ask and no --yes
  2  usage error
  3  no FTPS server reachable (connection failed, AUTH TLS refused, plaintext only)
  4  the certificate changed since it was saved and the change was not accepted
  5  the pin file cannot be read or written
"""


SYSTEM_PIN_FILE = "/etc/ftps-trust/known_servers.json"


def _print(*parts: Any, file: TextIO, sep: str = " ") -> None:
    """Write a line to ``file`` (the streams main() was given: testable, and no print() in
    module_utils, which ansible-test reserves for modules' own output).

    The one way out to the person: every character that is not printable is escaped
    (:func:`.x509.printable`) except the line breaks of the command's own layout, so nothing a
    server or a pin file chose (an ANSI escape, a bidi override) reaches the terminal as is. Text
    from a server has no line breaks left by then (the X.509 reader and :class:`.ProbeError`
    escape them), so it cannot fake a line of its own either."""
    text = sep.join(str(part) for part in parts)
    file.write("\n".join(printable(line) for line in text.split("\n")) + "\n")


def default_pin_file() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "ftps-trust", "known_servers.json")


@dataclass
class Assessment:
    """What the server presented and what we make of it."""

    host: str
    port: int
    fields: dict[str, Any]
    facts: dict[str, Any]
    ca_verified: bool
    problem: str | None  # why the certificate does not verify against the CAs
    saved: dict[str, Any] | None
    status: str = ""  # trusted_ca | pinned | unknown | changed
    saved_in: str = ""  # the pin file the saved entry came from
    differences: list[str] = field(default_factory=list)


def decide(ca_verified: bool, saved: dict[str, Any] | None, fields: dict[str, Any]) -> tuple[str, list[str]]:
    """The trust decision, without I/O.

    A saved pin is authoritative: a server once accepted must keep presenting that certificate,
    even if a new one would chain to a trusted CA (that is what a pin is for).
    """
    if saved:
        differences = compare_pin(fields, saved)
        return ("changed", differences) if differences else ("pinned", [])
    return ("trusted_ca", []) if ca_verified else ("unknown", [])


def parse_target(target: str, port: int | None, implicit: bool) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or bare ``v6`` -> (host, port).

    Raises ValueError (a usage error) for anything else: an unclosed or stray bracket, a
    bracketed name that is not an IPv6 address, text after ``]``, a bad or contradicting port.
    """
    host, parsed = target, None
    if target.startswith("["):
        host, bracket, rest = target[1:].partition("]")
        if not bracket:
            raise ValueError(f"{target!r}: '[' without ']' (IPv6 is written [address] or [address]:port)")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{target!r}: unexpected {rest!r} after ']' (use [address]:port)")
        if not _is_ipv6(host):
            raise ValueError(f"{target!r}: {host!r} in brackets is not an IPv6 address")
        parsed = rest[1:] if rest else None
    elif "[" in target or "]" in target:
        raise ValueError(f"{target!r}: brackets go around an IPv6 address only ([address]:port)")
    elif target.count(":") == 1:
        host, parsed = target.split(":")
    elif ":" in target and not _is_ipv6(target):
        raise ValueError(f"{target!r} is neither host:port nor an IPv6 address ([address]:port)")
    if parsed is not None:
        if not parsed.isdigit() or not 0 < int(parsed) < 65536:
            raise ValueError(f"invalid port in {target!r}")
        if port and port != int(parsed):
            raise ValueError(f"--port {port} contradicts {target!r}")
        port = int(parsed)
    if not host:
        raise ValueError("no host given")
    canonical_host(host)  # a name or an address, or a usage error (never a pin key of its own)
    if port and not 0 < port < 65536:
        raise ValueError(f"--port {port} is not 1..65535")
    return host, port or (990 if implicit else 21)


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def assess(
    host: str,
    port: int,
    *,
    implicit: bool,
    ca_file: str | None,
    server_hostname: str | None,
    timeout: float,
    store: PinStore,
    system: PinStore | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
) -> Assessment:
    """Connect (verifying against the CAs), capture the certificate, compare with the pin files.

    The person's own pin file wins; otherwise the fleet's read-only ``system`` pin file (written
    by the ftps_client role) supplies the pin.
    """
    try:
        result = probe(
            host,
            port,
            implicit=implicit,
            ca_file=ca_file,
            server_hostname=server_hostname,
            timeout=timeout,
            client_cert=client_cert,
            client_key=client_key,
        )
        ca_verified, problem = True, None
    except ProbeError as exc:
        if exc.kind not in CERTIFICATE_KINDS or not exc.result.get("certificate"):
            raise
        result, ca_verified, problem = exc.result, False, exc.message
    fields = result["certificate"]
    saved, saved_in = store.get(host, port), store.path
    if saved is None and system is not None:
        saved, saved_in = system.get(host, port), system.path
    status, differences = decide(ca_verified, saved, fields)
    return Assessment(
        host,
        port,
        fields,
        result,
        ca_verified,
        problem,
        saved,
        status=status,
        saved_in=saved_in,
        differences=differences,
    )


# -- presentation -----------------------------------------------------------------------------


def _validity(fields: dict[str, Any]) -> str:
    if fields.get("expired"):
        state = "EXPIRED"
    elif fields.get("not_yet_valid"):
        state = "NOT YET VALID"
    else:
        state = f"{fields.get('days_remaining')} days left"
    return f"{fields.get('not_before')} .. {fields.get('not_after')} ({state})"


def rows(fields: dict[str, Any]) -> list[tuple[str, str]]:
    key = fields.get("public_key")
    return [
        ("Subject", fields.get("subject") or "(empty)"),
        ("Issuer", fields.get("issuer") or "(empty)"),
        ("SANs", ", ".join(fields.get("sans") or []) or "(none)"),
        (
            "Valid",
            _validity(fields)
            if "expired" in fields
            else f"{fields.get('not_before')} .. {fields.get('not_after')}",
        ),
        ("Public key", describe_key(key) if isinstance(key, dict) else str(key)),
        ("Signature", str(fields.get("signature_algorithm"))),
        ("Serial", str(fields.get("serial_hex"))),
        ("SHA-256", str(fields.get("fingerprint_sha256"))),
        ("SPKI pin", f"sha256/{fields.get('spki_sha256')}"),
    ]


def render_fields(assessment: Assessment, width: int) -> str:
    facts = assessment.facts
    mode = "implicit" if facts.get("implicit") else "explicit"
    lines = [
        f"Server      {server_key(assessment.host, assessment.port)} ({mode} FTPS, "
        f"{facts.get('tls_version')}, {facts.get('cipher')})"
    ]
    for label, value in rows(assessment.fields):
        lines.extend(_wrap_row(label, value, width))
    chain = facts.get("chain") or []
    if facts.get("chain_complete"):
        lines.append(
            f"Chain       {len(chain)} certificate(s) sent: " + " <- ".join(c["subject"] for c in chain)
        )
    else:
        lines.append("Chain       leaf only (this Python cannot read the rest of the served chain)")
    return "\n".join(lines)


def _wrap_row(label: str, value: str, width: int) -> list[str]:
    wrapped = textwrap.wrap(value, max(20, width - 12), break_long_words=False, break_on_hyphens=False) or [
        ""
    ]
    return [f"{label if i == 0 else '':<12}{part}" for i, part in enumerate(wrapped)]


def _provenance(saved: dict[str, Any]) -> str:
    """``accepted 2026-...`` for a person's answer, ``from <source>`` for a pin the kit wrote."""
    if saved.get("accepted_at"):
        return f"accepted {saved['accepted_at']}"
    return f"from {saved.get('source') or 'the pin file'}"


def render_side_by_side(saved: dict[str, Any], fields: dict[str, Any], width: int) -> str:
    """Saved and presented fields in two columns; rows that differ are marked with ``!``."""
    label_width = 12
    column = max(24, (width - label_width - 5) // 2)
    header = f"  {'':<{label_width}}{'SAVED (' + _provenance(saved) + ')':<{column}} | PRESENTED NOW"
    lines = [header, "  " + "-" * (label_width + 2 * column + 3)]
    saved_rows = dict(rows(saved))
    for label, new in rows(fields):
        old = saved_rows.get(label, "?")
        if label == "Valid":  # the saved entry has no "days left"; compare the dates only
            new_cmp, old_cmp = new.split(" (")[0], old.split(" (")[0]
        else:
            new_cmp, old_cmp = new, old
        mark = "!" if new_cmp != old_cmp else " "
        left = textwrap.wrap(old, column - 1, break_long_words=True, break_on_hyphens=False) or [""]
        right = textwrap.wrap(new, column, break_long_words=True, break_on_hyphens=False) or [""]
        for i in range(max(len(left), len(right))):
            lines.append(
                f"{mark if i == 0 else ' '} {label if i == 0 else '':<{label_width}}"
                f"{left[i] if i < len(left) else '':<{column}}| {right[i] if i < len(right) else ''}"
            )
    return "\n".join(lines)


CHANGED_BANNER = """\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: THE SERVER'S CERTIFICATE HAS CHANGED!           @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
Someone could be intercepting your connection (man-in-the-middle), or the
server's certificate was replaced (renewal, key rotation)."""


def ask(question: str, stdin: TextIO, stdout: TextIO) -> bool:
    """Ask until the answer is yes or no (EOF means no), as ssh does."""
    stdout.write(question)
    stdout.flush()
    while True:
        answer = stdin.readline()
        if not answer:
            stdout.write("\n")
            return False
        answer = answer.strip().lower()
        if answer in ("yes", "y"):
            return True
        if answer in ("no", "n"):
            return False
        stdout.write("Please type 'yes' or 'no': ")
        stdout.flush()


# -- command ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ftps-trust",
        description="Show an FTPS server's certificate, check it against the trusted CAs and your saved "
        "pins, and ask whether to trust it when it is unknown (like ssh's known_hosts).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", metavar="HOST[:PORT]", help="server to check; [v6addr]:port for IPv6")
    parser.add_argument("--port", "-p", type=int, help="port (default 21, or 990 with --implicit)")
    parser.add_argument("--implicit", action="store_true", help="implicit FTPS (TLS from the first byte)")
    parser.add_argument(
        "--ca", metavar="FILE", help="verify against this CA file instead of the system store"
    )
    parser.add_argument(
        "--pin-file", metavar="FILE", default=default_pin_file(), help="pin file (default: %(default)s)"
    )
    parser.add_argument(
        "--system-pin-file",
        metavar="FILE",
        default=SYSTEM_PIN_FILE,
        help="the fleet's read-only pin file, consulted when yours has no entry (default: %(default)s)",
    )
    parser.add_argument(
        "--servername", metavar="NAME", help="name to check the certificate against (default: HOST)"
    )
    parser.add_argument(
        "--yes", "-y", action="store_true", help="trust an unknown certificate without asking (scripts)"
    )
    parser.add_argument(
        "--accept-changed",
        action="store_true",
        help="replace a saved pin whose certificate changed without asking (--yes never does that)",
    )
    parser.add_argument(
        "--client-cert",
        metavar="FILE",
        help="present this client certificate (PEM, then any intermediates) to a server that asks for one",
    )
    parser.add_argument(
        "--client-key", metavar="FILE", help="the key of --client-cert (PEM; default: in --client-cert)"
    )
    parser.add_argument("--forget", action="store_true", help="remove the saved pin for HOST[:PORT] and exit")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds (default: %(default)s)")
    return parser


def _forget(store: PinStore, host: str, port: int, stdout: TextIO) -> int:
    removed = store.remove(host, port)
    if removed:
        store.save()
    _print(
        f"{server_key(host, port)}: {'pin removed' if removed else 'no saved pin'} ({store.path})",
        file=stdout,
    )
    return EXIT_TRUSTED


def _report(found: Assessment, args: argparse.Namespace, width: int, stdout: TextIO) -> None:
    _print(render_fields(found, width), file=stdout)
    _print(file=stdout)
    where = f"the CA file {args.ca}" if args.ca else "the system's trusted CAs"
    checked_name = args.servername or found.host
    if found.ca_verified:
        _print(f"The certificate chains to {where} and is valid for {checked_name}.", file=stdout)
        return
    _print(f"The certificate does NOT verify against {where}: {found.problem}", file=stdout)
    if not hostname_matches(checked_name, found.fields.get("sans") or []):
        _print(f"Note: {checked_name} is not among the certificate's SANs.", file=stdout)


def _show_changed(found: Assessment, stdout: TextIO, width: int) -> None:
    name = server_key(found.host, found.port)
    _print(CHANGED_BANNER, file=stdout)
    _print(f"The certificate saved for {name} in {found.saved_in} differs:", file=stdout)
    for difference in found.differences:
        _print(f"  - {difference}", file=stdout)
    _print(file=stdout)
    _print(render_side_by_side(found.saved or {}, found.fields, width), file=stdout)
    _print(file=stdout)


def _confirm_changed(
    found: Assessment, *, args: argparse.Namespace, interactive: bool, io: tuple[TextIO, TextIO], width: int
) -> bool:
    stdin, stdout = io
    name = server_key(found.host, found.port)
    _show_changed(found, stdout, width)
    if args.accept_changed:
        return True
    if interactive:
        return ask(f"Replace the saved certificate for {name} with the new one (yes/no)? ", stdin, stdout)
    _print("No terminal to ask; rerun interactively or with --accept-changed.", file=stdout)
    return False


def _confirm_unknown(
    found: Assessment, args: argparse.Namespace, interactive: bool, io: tuple[TextIO, TextIO]
) -> bool:
    stdin, stdout = io
    name = server_key(found.host, found.port)
    _print(f"The authenticity of {name} can't be established.", file=stdout)
    if args.yes:
        return True
    if interactive:
        return ask(f"Trust this certificate and remember it for {name} (yes/no)? ", stdin, stdout)
    _print("No terminal to ask; rerun interactively or with --yes.", file=stdout)
    return False


def main(  # noqa: PLR0911 - one return per documented exit code
    argv: list[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> int:
    """The command; returns the exit code (see the module docstring)."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        host, port = parse_target(args.target, args.port, args.implicit)
    except ValueError as exc:
        parser.print_usage(sys.stderr)
        _print(f"ftps-trust: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    width = min(shutil.get_terminal_size((100, 24)).columns, 160)
    name = server_key(host, port)
    try:
        store = PinStore(args.pin_file)
        system = PinStore(args.system_pin_file) if args.system_pin_file else None
        if args.forget:
            return _forget(store, host, port, stdout)
        try:
            found = assess(
                host,
                port,
                implicit=args.implicit,
                ca_file=args.ca,
                server_hostname=args.servername,
                timeout=args.timeout,
                store=store,
                system=system,
                client_cert=args.client_cert,
                client_key=args.client_key,
            )
        except ProbeError as exc:
            hint = ": use --implicit" if exc.kind == "implicit_port" else ""
            _print(f"ftps-trust: {exc.message}{hint}", file=sys.stderr)
            return EXIT_UNREACHABLE
        _report(found, args, width, stdout)
        if found.status == "trusted_ca":
            return EXIT_TRUSTED
        if found.status == "pinned":
            _print(
                f"It matches the certificate saved for {name} ({_provenance(found.saved or {})}).",
                file=stdout,
            )
            return EXIT_TRUSTED
        interactive = bool(getattr(stdin, "isatty", lambda: False)())
        if found.status == "changed" and found.saved_in != store.path:
            _show_changed(found, stdout, width)
            _print(
                f"Refused. {name} is pinned by the fleet in {found.saved_in}; ftps-trust does not override "
                "that pin. Ask the administrators whether the certificate was rotated.",
                file=stdout,
            )
            return EXIT_CHANGED
        if found.status == "changed":
            if not _confirm_changed(
                found, args=args, interactive=interactive, io=(stdin, stdout), width=width
            ):
                _print(f"Refused. The saved certificate for {name} was kept.", file=stdout)
                return EXIT_CHANGED
        elif not _confirm_unknown(found, args, interactive, (stdin, stdout)):
            _print(f"Not trusted. Nothing was saved for {name}.", file=stdout)
            return EXIT_NOT_TRUSTED
        store.put(host, port, found.fields)
        store.save()
    except PinStoreError as exc:
        _print(f"ftps-trust: {exc}", file=sys.stderr)
        return EXIT_PIN_FILE
    _print(f"Saved {name} to {store.path}.", file=stdout)
    return EXIT_TRUSTED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
