"""Command line: ``ftpsd --config PATH`` runs the daemon, ``ftpsd check-config PATH`` validates.

``ftpsd reload`` asks the running daemon to reload and waits for every worker's answer (the
unit's ExecReload). ``ftpsd hash-password`` reads a password from stdin and prints its hash.
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


def _reload(config_path: str, pid: int | None, timeout: float) -> int:
    from ftpsd.config import peek_runtime_dir
    from ftpsd.status import ReloadFailed, reload_daemon

    try:
        result = reload_daemon(peek_runtime_dir(config_path), pid, timeout)
    except ReloadFailed as exc:
        for line in exc.lines:
            print(f"ftpsd: {line}", file=sys.stderr)
        return 1
    for line in result.warnings:
        print(f"ftpsd: warning: {line}", file=sys.stderr)
    print(f"ftpsd: {result.summary}")
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
    reload = sub.add_parser(
        "reload",
        help="reload the running daemon; exit 0 once every worker applied it, 1 if any refused it",
    )
    # SUPPRESS: `ftpsd --config X reload` keeps X unless `reload --config` is given.
    reload.add_argument("--config", default=argparse.SUPPRESS, help="the daemon's configuration")
    reload.add_argument("--pid", type=int, help="the daemon's main pid (systemd: $MAINPID)")
    reload.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for every worker (default 30)"
    )
    hashp = sub.add_parser("hash-password", help="hash a password read from stdin")
    hashp.add_argument("--scheme", default="scrypt", choices=("scrypt", "pbkdf2-sha256"))
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return _check(args.path)
    if args.command == "reload":
        return _reload(args.config, args.pid, args.timeout)
    if args.command == "hash-password":
        return _hash_password(args.scheme)
    from ftpsd.daemon import run

    return run(args.config)


if __name__ == "__main__":
    sys.exit(main())
