"""ftpsd configuration validation: one clear line per problem (ftpsd.config, check-config CLI)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from ftpsd.config import ConfigError, parse_config
from ftpsd.load import check_config
from ftpskit_common.passwd import dump_users, hash_password
from tests.certs import TestCA, point_current, write_generation


def _problems(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


def test_defaults_match_design() -> None:
    config = parse_config({})
    assert config.server.control_port == 21
    assert config.server.implicit_port == 990
    assert config.server.passive_ports == (50000, 50099)
    assert config.server.workers == 0
    assert config.server.runtime_dir == "/run/ftpsd"
    assert config.tls.min_version == "TLSv1.2"
    assert config.tls.tls13 is True
    assert config.tls.ciphers == "ECDHE+AESGCM:ECDHE+CHACHA20"
    assert config.tls.require_session_reuse is True
    assert config.tls.certfile == "/etc/ftps-kit/pki/current/cert.pem"
    assert config.users.file == "/etc/ftpsd/users.json"
    assert config.logging.xferlog == "/var/log/ftpsd/xferlog"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"bogus": {}}, "bogus: unknown section"),
        ({"bogus": 1}, "bogus: unknown key"),
        ({"server": {"colour": "red"}}, "server.colour: unknown key"),
        ({"tls": {"cert": "/x"}}, "tls.cert: unknown key"),
        ({"server": {"control_port": 0}}, "server.control_port: must be a port 1-65535, got 0"),
        ({"server": {"control_port": 70000}}, "server.control_port: must be a port 1-65535, got 70000"),
        ({"server": {"control_port": "21"}}, "server.control_port: must be a port 1-65535, got '21'"),
        ({"server": {"control_port": True}}, "server.control_port: must be a port 1-65535, got True"),
        (
            {"server": {"implicit_port": -1}},
            "server.implicit_port: must be a port 1-65535 or 0 (off), got -1",
        ),
        ({"server": {"implicit_port": 21}}, "server.implicit_port: equals control_port (21)"),
        (
            {"server": {"passive_ports": [50099, 50000]}},
            "server.passive_ports: range is inverted: 50099 > 50000",
        ),
        ({"server": {"passive_ports": [50000]}}, "server.passive_ports: must be [first, last]"),
        ({"server": {"passive_ports": [0, 10]}}, "server.passive_ports: must be [first, last]"),
        (
            {"server": {"passive_ports": [1, 100]}},
            "server.passive_ports: range 1-100 overlaps control_port 21",
        ),
        (
            {"server": {"passive_ports": [900, 1000]}},
            "server.passive_ports: range 900-1000 overlaps implicit_port 990",
        ),
        ({"server": {"listen": []}}, "server.listen: must be a non-empty list"),
        ({"server": {"listen": ["example.com"]}}, "server.listen: 'example.com' is not an IP address"),
        ({"server": {"listen": ["127.0.0.1", "127.0.0.1"]}}, "server.listen: lists an address twice"),
        (
            {"server": {"masquerade_address": "nat.example"}},
            "server.masquerade_address: 'nat.example' is not an IP",
        ),
        ({"server": {"masquerade_address": "::1"}}, "server.masquerade_address: must be an IPv4 address"),
        ({"server": {"workers": -1}}, "server.workers: must be an integer 0 (one per core) to 256, got -1"),
        ({"server": {"max_connections": 0}}, "server.max_connections: must be an integer 1 or more, got 0"),
        (
            {"server": {"max_connections": 5, "max_connections_per_ip": 6}},
            "server.max_connections_per_ip: exceeds",
        ),
        ({"server": {"idle_timeout": 0}}, "server.idle_timeout: must be an integer 1-86400 seconds, got 0"),
        ({"server": {"login_timeout": 0}}, "server.login_timeout: must be an integer 1-3600 seconds, got 0"),
        (
            {"server": {"login_failure_delay": -1}},
            "server.login_failure_delay: must be a number of seconds 0-60",
        ),
        ({"server": {"ban_after_failures": 1.5}}, "server.ban_after_failures: must be an integer"),
        (
            {"server": {"ipv6_prefix": 0}},
            "server.ipv6_prefix: must be an integer 1-128 (prefix length), got 0",
        ),
        ({"server": {"ipv6_prefix": 129}}, "server.ipv6_prefix: must be an integer 1-128"),
        (
            {"server": {"max_passive_ports_per_user": -1}},
            "server.max_passive_ports_per_user: must be an integer",
        ),
        (
            {"server": {"allow_hard_links": "yes"}},
            "server.allow_hard_links: must be true or false, got 'yes'",
        ),
        ({"server": {"banner": "two\nlines"}}, "server.banner: must be a single-line string"),
        (
            {"server": {"runtime_dir": "run/ftpsd"}},
            'server.runtime_dir: must be an absolute path or "" (off)',
        ),
        ({"tls": {"certfile": "relative.pem"}}, "tls.certfile: must be an absolute path"),
        ({"tls": {"chainfile": "chain.pem"}}, 'tls.chainfile: must be an absolute path or "" (no chain)'),
        (
            {"tls": {"min_version": "TLSv1.1"}},
            "tls.min_version: must be one of TLSv1.2, TLSv1.3, got 'TLSv1.1'",
        ),
        (
            {"tls": {"min_version": "TLSv1.3", "tls13": False}},
            "tls.tls13: is false but min_version is TLSv1.3",
        ),
        ({"tls": {"tls13": "yes"}}, "tls.tls13: must be true or false, got 'yes'"),
        ({"tls": {"require_session_reuse": 1}}, "tls.require_session_reuse: must be true or false, got 1"),
        ({"tls": {"ciphers": "NOT-A-CIPHER"}}, "tls.ciphers: OpenSSL accepts no cipher from 'NOT-A-CIPHER'"),
        ({"tls": {"ciphers": ""}}, "tls.ciphers: must be a non-empty string"),
        ({"users": {"file": "users.json"}}, "users.file: must be an absolute path"),
        (
            {"logging": {"level": "loud"}},
            "logging.level: must be one of debug, info, warning, error, got 'loud'",
        ),
        ({"logging": {"xferlog": "x.log"}}, 'logging.xferlog: must be an absolute path or "" (off)'),
        ({"server": []}, "server: must be a table"),
    ],
)
def test_document_problems(data: dict, expected: str) -> None:
    problems = _problems(data)
    assert any(p.startswith(expected) for p in problems), problems
    assert all("\n" not in p for p in problems)


def test_every_problem_is_reported() -> None:
    problems = _problems(
        {"server": {"control_port": 0, "passive_ports": [2, 1], "x": 1}, "tls": {"min_version": "SSLv3"}}
    )
    assert len(problems) == 4, problems


@pytest.fixture
def layout(tmp_path: pathlib.Path):
    """A valid config with real PKI material and users file; returns (config path, pki dir, ca)."""
    ca = TestCA()
    pki = tmp_path / "pki"
    point_current(pki, write_generation(pki, "gen-1", ca.issue(), ca))
    (tmp_path / "home").mkdir()
    dump_users(
        [{"name": "alice", "hash": hash_password("pw", "pbkdf2-sha256"), "home": str(tmp_path / "home")}],
        str(tmp_path / "users.json"),
    )
    config = tmp_path / "ftpsd.toml"
    config.write_text(
        f"""[server]
listen = ["127.0.0.1"]
control_port = 2121
implicit_port = 2990
passive_ports = [40000, 40010]
[tls]
certfile = "{pki}/current/cert.pem"
keyfile = "{pki}/current/key.pem"
chainfile = "{pki}/current/chain.pem"
[users]
file = "{tmp_path}/users.json"
[logging]
xferlog = "{tmp_path}/xferlog"
"""
    )
    return config, pki, ca


def test_check_config_ok(layout) -> None:
    config, _, _ = layout
    parsed, problems = check_config(str(config))
    assert problems == []
    assert parsed is not None
    assert parsed.server.control_port == 2121


def _break(kind: str, config: pathlib.Path, pki: pathlib.Path, ca: TestCA) -> None:
    current = pki / "current"
    if kind == "expired":
        point_current(pki, write_generation(pki, "gen-2", ca.issue(expired=True), ca))
    elif kind == "key-mismatch":
        (current / "key.pem").write_bytes((pki / "other.pem").read_bytes())
    elif kind == "missing-key":
        (current / "key.pem").unlink()
    elif kind == "garbage-cert":
        (current / "cert.pem").write_text("junk")
    elif kind == "missing-users":
        (config.parent / "users.json").unlink()
    elif kind == "bad-users":
        good = hash_password("pw", "pbkdf2-sha256")
        (config.parent / "users.json").write_text(
            f'{{"version": 1, "users": [{{"name": "-x", "hash": "{good}", "home": "/srv/x"}}]}}'
        )
    elif kind == "toml-syntax":
        config.write_text("[server\n")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("expired", "tls.certfile: .* expired on "),
        ("key-mismatch", "tls.keyfile: .* does not match the certificate"),
        ("missing-key", "tls.keyfile: cannot read .*: No such file or directory"),
        ("garbage-cert", "tls.certfile: .* holds no PEM certificate"),
        ("missing-users", "users.file: .* does not exist"),
        ("bad-users", "users.file: .*user '-x': field 'name' must not start with '-'"),
        ("toml-syntax", "not valid TOML"),
    ],
)
def test_check_config_cli_reports_one_line(layout, kind: str, expected: str) -> None:
    config, pki, ca = layout
    from tests.certs import key_pem

    (pki / "other.pem").write_bytes(key_pem(ca.issue()))
    _break(kind, config, pki, ca)
    result = subprocess.run(
        [sys.executable, "-m", "ftpsd", "check-config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    import re

    assert re.search(expected, lines[0]), lines[0]


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ftpsd", *args], capture_output=True, text=True, check=False)


def test_check_config_reports_every_problem_at_once(layout) -> None:
    """Issue 25: problems in the document, in the TLS material and in several users (several
    fields each) all come out of one run, one line each; nothing stops at the first."""
    config, pki, _ = layout
    text = config.read_text().replace("control_port = 2121", "control_port = 0\nbanner = 7")
    config.write_text(text.replace("[logging]", "[logging]\nlevel = 'loud'"))
    (pki / "current" / "key.pem").unlink()
    users = config.parent / "users.json"
    users.write_text(
        '{"version": 1, "colour": 1, "users": ['
        '{"name": "-x", "home": "relative", "perm": "all"},'
        '{"name": "bob", "hash": "plain", "home": "/srv/bob", "max_rate": -1},'
        '{"name": "bob", "hash": "plain", "home": "/srv/bob"}]}'
    )
    _config, problems = check_config(str(config))
    assert sorted(line.replace(str(users), "USERS") for line in problems if "key" not in line) == sorted(
        [
            "server.control_port: must be a port 1-65535, got 0",
            "server.banner: must be a single-line string of at most 200 characters",
            "logging.level: must be one of debug, info, warning, error, got 'loud'",
            "users.file: USERS: users file: unknown top-level field(s) colour",
            "users.file: USERS: user '-x': field 'name' must not start with '-'",
            "users.file: USERS: user '-x': field 'hash' is required",
            "users.file: USERS: user '-x': field 'home' must be an absolute path",
            "users.file: USERS: user '-x': field 'perm' must be one of ro, rw, upload, got 'all'",
            "users.file: USERS: user 'bob': field 'hash': hash must be a string like "
            "'$scrypt$ln=14,r=8,p=1$<salt>$<hash>'",
            "users.file: USERS: user 'bob': field 'max_rate' must be an integer >= 0 (0 = unlimited)",
            "users.file: USERS: user 'bob': field 'hash': hash must be a string like "
            "'$scrypt$ln=14,r=8,p=1$<salt>$<hash>'",
        ]
    ), problems
    assert [line for line in problems if "key" in line] == [
        next(line for line in problems if line.startswith("tls.keyfile: cannot read"))
    ]
    result = _run_cli("check-config", str(config))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"ftpsd: {line}" for line in problems]


def test_check_config_does_not_read_files_of_a_broken_section(layout) -> None:
    """A section with problems of its own names no file to check: only its own lines."""
    config, _, _ = layout
    config.write_text(config.read_text().replace("[tls]", "[tls]\nmin_version = 'SSLv3'"))
    _config, problems = check_config(str(config))
    assert problems == ["tls.min_version: must be one of TLSv1.2, TLSv1.3, got 'SSLv3'"]


@pytest.mark.parametrize(
    "form",
    [
        ("check-config", "{config}"),
        ("--config", "{config}", "check-config"),
        ("check-config", "--config", "{config}"),
        ("--config", "{config}", "check-config", "{config}"),
    ],
    ids=["positional", "global-option", "subcommand-option", "both-the-same"],
)
def test_check_config_takes_the_path_every_way(layout, form: tuple[str, ...]) -> None:
    """Issue 25: `ftpsd --config X check-config` and `check-config --config X` both work."""
    config, _, _ = layout
    result = _run_cli(*(arg.format(config=config) for arg in form))
    assert (result.returncode, result.stdout.strip()) == (0, f"ftpsd: {config}: configuration OK"), (
        result.stderr
    )


def test_check_config_refuses_two_different_paths(layout, tmp_path: pathlib.Path) -> None:
    config, _, _ = layout
    result = _run_cli("--config", str(tmp_path / "other.toml"), "check-config", str(config))
    assert result.returncode == 2
    assert "two configurations given" in result.stderr


def test_check_config_cli_ok(layout) -> None:
    config, _, _ = layout
    result = subprocess.run(
        [sys.executable, "-m", "ftpsd", "check-config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


def test_material_is_read_from_one_resolved_directory(layout) -> None:
    """cert, key and chain come from the directory `current` pointed at when the load began."""
    from ftpsd.tls import resolve_paths

    config, pki, _ = layout
    parsed, _ = check_config(str(config))
    assert parsed is not None
    directory, cert, key, chain = resolve_paths(parsed.tls)
    assert directory == str((pki / "gen-1").resolve())
    assert {pathlib.Path(p).parent for p in (cert, key, chain)} == {pki / "gen-1"}


@pytest.mark.parametrize(
    ("overrides", "versions"),
    [
        ({}, ("TLSv1.2", "TLSv1.3")),
        ({"tls13": False}, ("TLSv1.2",)),
        ({"min_version": "TLSv1.3"}, ("TLSv1.3",)),
    ],
)
def test_tls_context_policy(layout, overrides: dict, versions: tuple[str, ...]) -> None:
    """The context carries the policy: versions, no compression, no renegotiation, server order."""
    import dataclasses
    import socket
    import ssl

    from OpenSSL import SSL

    from ftpsd.tls import build_context, load_material

    config, _, _ = layout
    parsed, _ = check_config(str(config))
    assert parsed is not None
    tls = dataclasses.replace(parsed.tls, **overrides)
    ctx = build_context(tls, load_material(tls))
    options = ctx.set_options(0)  # returns the options in force
    for flag in (SSL.OP_NO_COMPRESSION, SSL.OP_NO_RENEGOTIATION, SSL.OP_CIPHER_SERVER_PREFERENCE):
        assert options & flag
    for version in ("TLSv1.2", "TLSv1.3"):
        client_ctx = ssl.create_default_context()
        client_ctx.check_hostname = False
        client_ctx.verify_mode = ssl.CERT_NONE
        client_ctx.minimum_version = client_ctx.maximum_version = getattr(
            ssl.TLSVersion, version.replace(".", "_")
        )
        a, b = socket.socketpair()
        server = SSL.Connection(ctx, a)
        server.set_accept_state()
        b.settimeout(10)  # the server side stays blocking: pyOpenSSL would raise WantRead on a timeout
        import threading

        result: dict = {}

        def serve(server=server, result=result) -> None:
            try:
                server.do_handshake()
                result["ok"] = True
            except (SSL.Error, OSError):
                result["ok"] = False

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with client_ctx.wrap_socket(b) as tls_sock:
                negotiated = tls_sock.version()
        except (ssl.SSLError, OSError):
            negotiated = None
        thread.join(5)
        a.close()
        assert (negotiated == version) is (version in versions), (version, negotiated)


@pytest.mark.parametrize(
    ("mode", "owner", "expected"),
    [
        (0o600, None, None),
        (0o640, None, None),  # ftps_pki's root:<daemon's group> 0640
        (0o400, None, None),
        (0o644, None, r"has mode 0644, readable or writable beyond the daemon; use mode 0600 .* or 0640"),
        (0o666, None, r"has mode 0666"),
        (0o660, None, r"has mode 0660"),
        (0o604, None, r"has mode 0604"),
        (0o600, 65534, r"is owned by uid 65534, not root or uid \d+; use mode 0600"),
    ],
)
def test_check_config_refuses_a_key_others_can_read(layout, mode: int, owner: int | None, expected) -> None:
    """Issue 11 row 14: a key file 0644 / 0666 or owned by nobody passed check-config."""
    config, pki, _ = layout
    key = (pki / "current" / "key.pem").resolve()
    key.chmod(mode)
    if owner is not None:
        if os.geteuid() != 0:
            pytest.skip("chown needs root")
        os.chown(key, owner, -1)
    _, problems = check_config(str(config))
    if expected is None:
        assert problems == []
    else:
        import re

        assert len(problems) == 1 and re.search(expected, problems[0]), problems
        assert problems[0].startswith(f"tls.keyfile: {key}")
