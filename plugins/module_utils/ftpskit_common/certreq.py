"""``ftps-cert``: a person's client certificate - the key and CSR made on their machine, then the install.

Standard library only (it ships in the ``ftpskit-common`` wheel); the key and the CSR are made by
the ``openssl`` command every Debian and macOS has. The key never leaves the machine::

    ftps-cert request --identity alice@example.org   # key (0600) + CSR in ~/.config/ftps-kit/client
    # send client.csr to the operator, who runs playbooks/client_cert.yml and sends back a .pem
    ftps-cert install alice.csr.pem                    # checked, then key.pem + cert.pem in place
    ftps-cert show                                     # identity, serial, expiry; when to renew

Renewing is the same two steps: ``request`` makes a new key and CSR beside the current ones (which
keep working), ``install`` swaps both. The identity rule (:func:`check_identity`) is the one the
client CA applies (``plugins/module_utils/pki/client.py``): a plain e-mail address.

Exit codes: 0 done, 1 refused (a bad identity, a certificate that does not fit), 2 usage.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import subprocess
import sys
import tempfile
from typing import TextIO

from .atomicfile import atomic_write

IDENTITY_MAX = 255
# An e-mail address as the certificate's SAN carries it (rfc822Name, IA5String): ASCII, one "@",
# no "..", nothing a path or a shell could read differently.
_IDENTITY_RE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+=?^_`{|}~-]+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"
)
KEY_FILE, CERT_FILE, PENDING_KEY_FILE, CSR_FILE, IDENTITY_FILE = (
    "key.pem",
    "cert.pem",
    "pending-key.pem",
    "client.csr",
    "identity",
)
KEY_TYPES = {
    "ecdsa-p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "ecdsa-p384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    "rsa-3072": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
}
DEFAULT_DIR = os.path.join("~", ".config", "ftps-kit", "client")
EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def check_identity(identity: str) -> str:
    """The identity a client certificate names (its SAN e-mail); ValueError saying what is wrong."""
    if not identity:
        raise ValueError("the identity is empty: give the user's e-mail address, e.g. alice@example.org")
    if len(identity) > IDENTITY_MAX:
        raise ValueError(f"the identity is {len(identity)} characters long, more than {IDENTITY_MAX}")
    if not _IDENTITY_RE.fullmatch(identity):
        raise ValueError(
            f"the identity {identity!r} is not a plain e-mail address (ASCII, one '@', no spaces, "
            "control characters, '/' or '..')"
        )
    return identity


def _openssl(*args: str, data: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["openssl", *args], input=data, capture_output=True, check=False, timeout=60)
    except FileNotFoundError as exc:
        raise ValueError("the openssl command is not installed") from exc
    if done.returncode != 0:
        raise ValueError(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def request(directory: str, identity: str, key_type: str = "ecdsa-p256") -> str:
    """A new key (``pending-key.pem``, 0600) and its CSR (``client.csr``); returns the CSR's path."""
    check_identity(identity)
    if key_type not in KEY_TYPES:
        raise ValueError(f"unsupported key type {key_type!r}; supported: {', '.join(KEY_TYPES)}")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    key = _openssl("genpkey", *KEY_TYPES[key_type])
    atomic_write(os.path.join(directory, PENDING_KEY_FILE), key, 0o600)
    subject = f"/CN={identity}" if len(identity) <= 64 else "/"
    with tempfile.NamedTemporaryFile(dir=directory) as handle:
        handle.write(key)
        handle.flush()
        csr = _openssl(
            "req",
            "-new",
            "-key",
            handle.name,
            "-subj",
            subject,
            "-addext",
            f"subjectAltName=email:{identity}",
        )
    csr_path = os.path.join(directory, CSR_FILE)
    atomic_write(csr_path, csr, 0o644)
    atomic_write(os.path.join(directory, IDENTITY_FILE), (identity + "\n").encode(), 0o644)
    return csr_path


def _public_key(pem: bytes, kind: str) -> bytes:
    if kind == "cert":
        return _openssl("x509", "-noout", "-pubkey", data=pem)
    return _openssl("pkey", "-pubout", data=pem)


def certificate_summary(pem: bytes) -> dict[str, str]:
    """Identity (the SAN e-mail), serial, notAfter and EKU of a PEM certificate, read by openssl."""
    text = _openssl(
        "x509", "-noout", "-serial", "-enddate", "-ext", "subjectAltName,extendedKeyUsage", data=pem
    )
    lines = [line.strip() for line in text.decode(errors="replace").splitlines()]
    out = {"identity": "", "serial": "", "not_after": "", "eku": ""}
    for i, line in enumerate(lines):
        if line.startswith("serial="):
            out["serial"] = line.split("=", 1)[1].lower().lstrip("0") or "0"  # as format(serial, "x")
        elif line.startswith("notAfter="):
            stamp = _dt.datetime.strptime(line.split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
            out["not_after"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif line.startswith("X509v3 Subject Alternative Name") and i + 1 < len(lines):
            emails = [p.strip()[6:] for p in lines[i + 1].split(",") if p.strip().startswith("email:")]
            out["identity"] = emails[0] if len(emails) == 1 else ""
        elif line.startswith("X509v3 Extended Key Usage") and i + 1 < len(lines):
            out["eku"] = lines[i + 1]
    return out


def install(directory: str, cert_path: str) -> dict[str, str]:
    """Check the signed certificate (the pending key's, this identity's, clientAuth only), then install it."""
    with open(cert_path, "rb") as handle:
        cert = handle.read()
    try:
        with open(os.path.join(directory, IDENTITY_FILE), encoding="ascii") as handle:
            identity = handle.read().strip()
        with open(os.path.join(directory, PENDING_KEY_FILE), "rb") as handle:
            key = handle.read()
    except OSError as exc:
        raise ValueError(f"no pending request in {directory}: run `ftps-cert request` first ({exc})") from exc
    summary = certificate_summary(cert)
    problems = []
    if _public_key(cert, "cert") != _public_key(key, "key"):
        problems.append("it is not the certificate for the key of the last `ftps-cert request`")
    if summary["identity"] != identity:
        problems.append(f"it names {summary['identity']!r}, not {identity!r}")
    if summary["eku"] != "TLS Web Client Authentication":
        problems.append(f"it is not a client certificate (extended key usage: {summary['eku'] or 'none'})")
    if problems:
        raise ValueError(f"{cert_path} refused, nothing installed: {'; '.join(problems)}")
    atomic_write(os.path.join(directory, KEY_FILE), key, 0o600)
    atomic_write(os.path.join(directory, CERT_FILE), cert, 0o644)
    os.unlink(os.path.join(directory, PENDING_KEY_FILE))
    return summary


def _say(line: str, stream: TextIO | None = None) -> None:
    """One line to stdout (or ``stream``): no print() in module_utils, which ansible-test keeps
    for modules' own output."""
    (stream or sys.stdout).write(line + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ftps-cert", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument(
        "--dir", default=DEFAULT_DIR, help=f"where the key and certificate live (default {DEFAULT_DIR})"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    req = sub.add_parser("request", help="make a new key and CSR (the key never leaves this machine)")
    req.add_argument("--identity", required=True, help="your e-mail address, as the FTPS account names it")
    req.add_argument("--key-type", default="ecdsa-p256", choices=sorted(KEY_TYPES))
    ins = sub.add_parser("install", help="check and install the signed certificate")
    ins.add_argument("certificate", help="the .pem the operator sent back")
    sub.add_parser("show", help="identity, serial and expiry of the installed certificate")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    directory = os.path.expanduser(args.dir)
    try:
        if args.command == "request":
            csr = request(directory, args.identity, args.key_type)
            _say(f"key: {os.path.join(directory, PENDING_KEY_FILE)} (0600, keep it here)")
            _say(f"CSR: {csr} - send it to your FTPS operator; install the certificate they send back with")
            _say("     ftps-cert install <file>.pem")
        elif args.command == "install":
            summary = install(directory, args.certificate)
            _say(
                f"installed for {summary['identity']} (serial {summary['serial']}, "
                f"valid until {summary['not_after']}):"
            )
            _say(f"  certificate {os.path.join(directory, CERT_FILE)}")
            _say(f"  key         {os.path.join(directory, KEY_FILE)}")
        else:
            with open(os.path.join(directory, CERT_FILE), "rb") as handle:
                summary = certificate_summary(handle.read())
            _say(f"{summary['identity']} serial {summary['serial']} valid until {summary['not_after']}")
            _say("renew before then: ftps-cert request --identity ..., then ftps-cert install")
    except (OSError, ValueError) as exc:
        _say(f"ftps-cert: {exc}", sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK
