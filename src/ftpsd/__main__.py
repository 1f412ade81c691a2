"""Command line: ``ftpsd --config PATH`` runs the daemon, ``ftpsd check-config PATH`` validates.

``ftpsd hash-password`` reads a password from stdin and prints its users-file hash.
"""

from __future__ import annotations

import argparse
import sys

from ftpsd import __version__

DEFAULT_CONFIG = "/etc/ftpsd/ftpsd.toml"


def _check(path: str) -> int:
    from ftpsd.config import check_config

    _, problems = check_config(path)
    for line in problems:
        print(f"ftpsd: {line}", file=sys.stderr)
    if problems:
        return 1
    print(f"ftpsd: {path}: configuration OK")
    return 0


def _hash_password(scheme: str) -> int:
    from ftpsd.passwd import hash_password

    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("ftpsd: empty password on stdin", file=sys.stderr)
        return 1
    print(hash_password(password, scheme))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ftpsd", description="Hardened, reloadable FTPS daemon.")
    parser.add_argument("--version", action="version", version=f"ftpsd {__version__}")
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"TOML configuration (default {DEFAULT_CONFIG})"
    )
    sub = parser.add_subparsers(dest="command")
    check = sub.add_parser("check-config", help="validate a configuration and everything it points at")
    check.add_argument("path")
    hashp = sub.add_parser("hash-password", help="hash a password read from stdin")
    hashp.add_argument("--scheme", default="scrypt", choices=("scrypt", "pbkdf2-sha256"))
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return _check(args.path)
    if args.command == "hash-password":
        return _hash_password(args.scheme)
    from ftpsd.daemon import run

    return run(args.config)


if __name__ == "__main__":
    sys.exit(main())
