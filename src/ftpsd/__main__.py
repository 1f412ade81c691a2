"""Command line: ``ftpsd --config PATH`` runs the daemon, ``ftpsd check-config PATH`` validates.

Every subcommand takes the configuration the same ways: ``ftpsd --config PATH CMD``,
``ftpsd CMD --config PATH`` (and ``check-config`` also ``ftpsd check-config PATH``).

``ftpsd reload`` asks the running daemon to reload and waits for every worker's answer (the
unit's ExecReload) and, with ``--metrics-out``, refreshes the metrics textfile afterwards.
``ftpsd status`` says what the daemon serves and whether it is the deployed certificate;
``ftpsd metrics`` writes a Prometheus textfile. ``ftpsd hash-password`` reads a password from
stdin and prints its hash.
"""

from __future__ import annotations

import argparse
import sys

from ftpsd import __version__

DEFAULT_CONFIG = "/etc/ftpsd/ftpsd.toml"


def _check(path: str) -> int:
    from ftpsd.load import check_config

    _, problems = check_config(path)
    for line in problems:
        print(f"ftpsd: {line}", file=sys.stderr)
    if problems:
        return 1
    print(f"ftpsd: {path}: configuration OK")
    return 0


def _hash_password(scheme: str) -> int:
    from ftpskit_common.passwd import UsersFileError, hash_password

    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("ftpsd: empty password on stdin", file=sys.stderr)
        return 1
    try:
        print(hash_password(password, scheme))
    except UsersFileError as exc:  # the account rules' reason (a NUL no FTP client can send)
        print(f"ftpsd: {exc}", file=sys.stderr)
        return 1
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


def _status(config_path: str, as_json: bool) -> int:
    import json

    from ftpsd.status import collect, format_status

    info = collect(config_path)
    if as_json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print("\n".join(format_status(info)))
    return 0 if info["running"] and info["served_matches_deployed"] else 1


def _metrics(config_path: str, out: str, renew_before_days: int | None) -> int:
    from ftpsd.config import peek_tls
    from ftpsd.metrics import write

    if renew_before_days is None:  # the configuration's tls.renew_before_days
        renew_before_days = peek_tls(config_path).renew_before_days
    try:
        write(config_path, out, renew_before_days)
    except OSError as err:
        print(f"ftpsd: cannot write {out}: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ftpsd", description="Hardened, reloadable FTPS daemon.")
    parser.add_argument("--version", action="version", version=f"ftpsd {__version__}")
    # None when not given, so that check-config can tell a --config from its positional PATH.
    parser.add_argument("--config", default=None, help=f"TOML configuration (default {DEFAULT_CONFIG})")
    sub = parser.add_subparsers(dest="command")
    check = sub.add_parser(
        "check-config",
        help="validate a configuration and everything it points at; every problem, one line each",
    )
    check.add_argument("path", nargs="?", help="the configuration (the same as --config)")
    check.add_argument("--config", default=argparse.SUPPRESS, help="the configuration to check")
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
    reload.add_argument("--metrics-out", help="after the reload (applied or not), rewrite this textfile")
    renew_help = "the PKI's renewal window in days (default: the configuration's tls.renew_before_days)"
    reload.add_argument("--renew-before-days", type=int, default=None, help=renew_help)
    status = sub.add_parser(
        "status",
        help="what each worker serves, and whether it is the deployed certificate;"
        " exit 0 only if running and serving the deployed certificate",
    )
    status.add_argument("--config", default=argparse.SUPPRESS, help="the daemon's configuration")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    metrics = sub.add_parser("metrics", help="write a Prometheus textfile (node_exporter textfile collector)")
    metrics.add_argument("--config", default=argparse.SUPPRESS, help="the daemon's configuration")
    metrics.add_argument("--out", required=True, help="the .prom file to write (atomically)")
    metrics.add_argument("--renew-before-days", type=int, default=None, help=renew_help)
    hashp = sub.add_parser("hash-password", help="hash a password read from stdin")
    hashp.add_argument("--scheme", default="scrypt", choices=("scrypt", "pbkdf2-sha256"))
    args = parser.parse_args(argv)
    if args.command == "check-config":
        if args.path and args.config and args.path != args.config:
            check.error(f"two configurations given: {args.path} and --config {args.config}")
        return _check(args.path or args.config or DEFAULT_CONFIG)
    args.config = args.config or DEFAULT_CONFIG
    if args.command == "reload":
        code = _reload(args.config, args.pid, args.timeout)
        if args.metrics_out:
            _metrics(args.config, args.metrics_out, args.renew_before_days)
        return code
    if args.command == "status":
        return _status(args.config, args.json)
    if args.command == "metrics":
        return _metrics(args.config, args.out, args.renew_before_days)
    if args.command == "hash-password":
        return _hash_password(args.scheme)
    from ftpsd.daemon import run

    return run(args.config)


if __name__ == "__main__":
    sys.exit(main())
