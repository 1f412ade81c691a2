"""The deployed FTPS servers (playbooks/site.yml): state and behaviour, seen from the client.

State: ftpsd active under its hardened unit, ports listening, owners and modes. Behaviour: the
certificate served after AUTH TLS is the deployed one; real clients (curl, lftp, Python with TLS
session reuse) move files and checksums match; plaintext logins are refused; the firewall blocks
a port outside the passive range and lets one inside through; a user added or removed by the
ftps_users role takes effect through a reload (MainPID unchanged) and a re-run changes nothing;
a config change is served as soon as the role's reload returns, and `systemctl reload` fails on a
broken certificate while the deployed one keeps serving.

Users and passwords come from the lab inventory the scenario links (inventories/lab/group_vars).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import secrets
import shlex
import subprocess
from collections.abc import Iterator

import pytest
import testinfra
import yaml
from conftest import ansible_env, host_name, transient_listener

ROOT = pathlib.Path(__file__).resolve().parents[3]
GROUP_VARS = ROOT / "inventories" / "lab" / "group_vars" / "ftps_servers"
SETTINGS = yaml.safe_load((GROUP_VARS / "main.yml").read_text())
VAULT = yaml.safe_load((GROUP_VARS.parent / "all" / "vault.yml").read_text())
CONTROL_PORT = SETTINGS["ftps_server_control_port"]
IMPLICIT_PORT = SETTINGS["ftps_server_implicit_port"]
PASSIVE_FIRST, PASSIVE_LAST = SETTINGS["ftps_server_passive_ports"]
ACCOUNTS = {account["name"]: account for account in SETTINGS["ftps_users_accounts"]}
PKI_CURRENT = "/etc/ftps-kit/pki/current"
# The kit's one fingerprint format (lowercase hex of the DER's SHA-256, no colons), from a PEM
# on stdin: what ftpsd logs and reports, what ftps_pki's facts and the pins hold.
DER_SHA256 = "openssl x509 -outform DER | sha256sum | cut -d' ' -f1"
# ftps_client's default ftps_client_venv: the ftpskit-common wheel behind ftps-trust.
TRUST_VENV_PYTHON = "/opt/ftps-trust/venv/bin/python"


def password(name: str) -> str:
    """The lab password of `name`, resolved from its `{{ vault_... }}` reference."""
    match = re.fullmatch(r"\{\{\s*(\w+)\s*\}\}", ACCOUNTS[name]["password"])
    assert match, f"lab account {name}: password is not a vault reference"
    return VAULT[match.group(1)]


def q(text: str) -> str:
    return shlex.quote(text)


def curl(client: testinfra.host.Host, *args: str) -> testinfra.backend.base.CommandResult:
    """curl over explicit FTPS, verifying the server with the client's system trust store."""
    return client.run("curl -sS --ssl-reqd --max-time 30 " + " ".join(args))


# --- state ---------------------------------------------------------------------------------
def test_ftpsd_active_and_enabled(server: testinfra.host.Host) -> None:
    service = server.service("ftpsd")
    assert service.is_enabled
    assert service.is_running


def test_ftpsd_runs_as_its_system_user(server: testinfra.host.Host) -> None:
    pid = server.check_output("systemctl show -P MainPID ftpsd")
    assert server.check_output(f"ps -o user= -p {pid}").strip() == "ftpsd"
    user = server.user("ftpsd")
    assert user.shell == "/usr/sbin/nologin"
    assert "ftpsd" in user.groups


@pytest.mark.parametrize("port", [CONTROL_PORT, IMPLICIT_PORT])
def test_ports_listening(server: testinfra.host.Host, port: int) -> None:
    assert server.socket(f"tcp://0.0.0.0:{port}").is_listening


@pytest.mark.parametrize(
    ("path", "owner", "group", "mode"),
    [
        ("/etc/ftpsd", "root", "ftpsd", 0o750),
        ("/etc/ftpsd/ftpsd.toml", "root", "ftpsd", 0o640),
        ("/etc/ftpsd/users.json", "root", "ftpsd", 0o640),
        ("/srv/ftps", "ftpsd", "ftpsd", 0o750),
        ("/srv/ftps/alice", "ftpsd", "ftpsd", 0o750),
        ("/srv/ftps/bob", "ftpsd", "ftpsd", 0o750),
        ("/var/log/ftpsd", "ftpsd", "ftpsd", 0o750),
        ("/opt/ftpsd/venv/bin/ftpsd", "root", "root", 0o755),
        ("/etc/systemd/system/ftpsd.service", "root", "root", 0o644),
        ("/etc/nftables.d/ftps-kit.nft", "root", "root", 0o600),
    ],
)
def test_owner_and_mode(server: testinfra.host.Host, path: str, owner: str, group: str, mode: int) -> None:
    target = server.file(path)
    assert target.exists, path
    assert (target.user, target.group, target.mode) == (owner, group, mode), path


def test_users_file_holds_hashes_only(server: testinfra.host.Host) -> None:
    users = json.loads(server.check_output("cat /etc/ftpsd/users.json"))["users"]
    assert sorted(user["name"] for user in users) == sorted(ACCOUNTS)
    for user in users:
        assert user["hash"].startswith("$scrypt$")
        assert password(user["name"]) not in json.dumps(user)
    assert {user["name"]: user["perm"] for user in users} == {
        name: account.get("perm", "rw") for name, account in ACCOUNTS.items()
    }


def test_config_validates_with_the_daemon(server: testinfra.host.Host) -> None:
    out = server.check_output("/opt/ftpsd/venv/bin/ftpsd check-config /etc/ftpsd/ftpsd.toml 2>&1")
    assert "OK" in out


@pytest.mark.parametrize(
    ("prop", "expected"),
    [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", "cap_net_bind_service"),
        ("AmbientCapabilities", "cap_net_bind_service"),
        ("User", "ftpsd"),
    ],
)
def test_unit_is_hardened(server: testinfra.host.Host, prop: str, expected: str) -> None:
    assert server.check_output(f"systemctl show -P {prop} ftpsd") == expected


def test_unit_writes_only_data_and_logs(server: testinfra.host.Host) -> None:
    assert server.check_output("systemctl show -P ReadWritePaths ftpsd").split() == [
        "/srv/ftps",
        "/var/log/ftpsd",
    ]


# --- TLS identity --------------------------------------------------------------------------
@pytest.mark.parametrize("port", [CONTROL_PORT, IMPLICIT_PORT])
def test_served_certificate_is_the_deployed_one(
    server: testinfra.host.Host, client: testinfra.host.Host, port: int
) -> None:
    name = host_name(server)
    deployed = deployed_fingerprint(server)
    starttls = "-starttls ftp " if port == CONTROL_PORT else ""
    served = client.check_output(
        f"openssl s_client {starttls}-connect {name}:{port} -servername {name} </dev/null 2>/dev/null"
        f" | {DER_SHA256}"
    )
    assert served == deployed


# --- transfers -----------------------------------------------------------------------------
@pytest.fixture
def payload(client: testinfra.host.Host) -> Iterator[tuple[str, str]]:
    """A random 3 MiB file on the client and its SHA-256."""
    path = client.check_output("mktemp /tmp/ftps-payload.XXXXXX")
    client.check_output(f"head -c 3145728 /dev/urandom > {path}")
    digest = client.check_output(f"sha256sum {path}").split()[0]
    yield path, digest
    client.run(f"rm -f {path} {path}.back")


def test_curl_roundtrip_verified(
    server: testinfra.host.Host, client: testinfra.host.Host, payload: tuple[str, str]
) -> None:
    path, digest = payload
    name, remote = host_name(server), f"curl-{secrets.token_hex(4)}.bin"
    auth = q(f"alice:{password('alice')}")
    up = curl(client, f"-u {auth} -T {path} ftp://{name}/{remote}")
    assert up.rc == 0, up.stderr
    down = curl(client, f"-u {auth} -o {path}.back ftp://{name}/{remote}")
    assert down.rc == 0, down.stderr
    assert client.check_output(f"sha256sum {path}.back").split()[0] == digest
    assert server.file(f"/srv/ftps/alice/{remote}").user == "ftpsd"
    curl(client, f"-u {auth} ftp://{name}/ -Q {q('DELE ' + remote)}")


def test_implicit_ftps_listing(server: testinfra.host.Host, client: testinfra.host.Host) -> None:
    result = client.run(
        f"curl -sS --max-time 30 -u {q('bob:' + password('bob'))} ftps://{host_name(server)}:{IMPLICIT_PORT}/"
    )
    assert result.rc == 0, result.stderr


def test_lftp_roundtrip_verified(
    server: testinfra.host.Host, client: testinfra.host.Host, payload: tuple[str, str]
) -> None:
    path, digest = payload
    remote = f"lftp-{secrets.token_hex(4)}.bin"
    script = (
        "set ssl:verify-certificate yes; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; "
        f"open -u alice,{password('alice')} {host_name(server)}; "
        f"put {path} -o {remote}; get {remote} -o {path}.back; rm {remote}"
    )
    result = client.run(f"lftp -c {q(script)}")
    assert result.rc == 0, result.stderr
    assert client.check_output(f"sha256sum {path}.back").split()[0] == digest


def test_python_client_reuses_tls_session(server: testinfra.host.Host, client: testinfra.host.Host) -> None:
    """ftpskit_common.client.FTPSClient with the system trust store: verified, session reused.

    The library as ftps_client installed it on the client (the ftpskit-common wheel behind
    ftps-trust): the one implementation, not a copy.
    """
    script = f"""
import hashlib, io, json, os, ssl
from ftpskit_common.client import FTPSClient
data = os.urandom(1 << 20)
ftp = FTPSClient({host_name(server)!r}, {CONTROL_PORT}, context=ssl.create_default_context())
ftp.login("alice", {password("alice")!r})
ftp.prot_p()
ftp.storbinary("STOR py.bin", io.BytesIO(data))
back = io.BytesIO()
ftp.retrbinary("RETR py.bin", back.write)
ftp.delete("py.bin")
ftp.quit()
print(json.dumps({{"same": hashlib.sha256(back.getvalue()).digest() == hashlib.sha256(data).digest(),
                  "reused": ftp.data_sessions_reused}}))
"""
    out = json.loads(client.check_output(f"{TRUST_VENV_PYTHON} -c {q(script)}"))
    assert out["same"]
    assert out["reused"] and all(out["reused"])


def test_permissions_enforced(server: testinfra.host.Host, client: testinfra.host.Host) -> None:
    """bob is read-only: his upload is refused; alice (rw) may upload."""
    client.check_output("echo ro-test > /tmp/ro-test.txt")
    refused = curl(
        client, f"-u {q('bob:' + password('bob'))} -T /tmp/ro-test.txt ftp://{host_name(server)}/ro.txt"
    )
    assert refused.rc != 0
    assert not server.file("/srv/ftps/bob/ro.txt").exists


def test_plaintext_login_refused(server: testinfra.host.Host, client: testinfra.host.Host) -> None:
    """USER/PASS before AUTH TLS is refused (curl without TLS gets 530)."""
    result = client.run(
        f"curl -sS --max-time 20 -u {q('alice:' + password('alice'))} ftp://{host_name(server)}/"
    )
    assert result.rc != 0
    assert "530" in result.stderr or "denied" in result.stderr.lower()


def test_wrong_password_refused(server: testinfra.host.Host, client: testinfra.host.Host) -> None:
    result = curl(client, f"-u {q('alice:not-the-password')} ftp://{host_name(server)}/")
    assert result.rc == 67  # CURLE_LOGIN_DENIED


# --- firewall ------------------------------------------------------------------------------
@contextlib.contextmanager
def listener(host: testinfra.host.Host, port: int) -> Iterator[None]:
    """A plain TCP listener on `port` of `host` (a transient systemd unit)."""
    code = (
        f"import socket\ns=socket.create_server(('0.0.0.0', {port}))\n"
        "while True:\n c,_=s.accept(); c.sendall(b'hi'); c.close()"
    )
    argv = ["/usr/bin/python3", "-c", code]
    with transient_listener(host, f"ftpskit-fwtest-{port}", port, argv, max_seconds=60):
        yield


def connect(client: testinfra.host.Host, name: str, port: int) -> str:
    """'open', 'refused' or 'timeout' for a TCP connect from the client to `name`'s address.

    The name is resolved first, apart (asked again up to 5 times: the lab's DNS may be reloading),
    so that a name that does not resolve is 'unresolved', never counted as a firewall's 'timeout'."""
    script = (
        "import socket,time\n"
        "for attempt in range(5):\n"
        " try: address = socket.getaddrinfo(" + repr(name) + ", None, socket.AF_INET)[0][4][0]; break\n"
        " except socket.gaierror: time.sleep(2)\n"
        "else: print('unresolved'); raise SystemExit\n"
        "try:\n"
        f" socket.create_connection((address, {port}), timeout=3).close(); print('open')\n"
        "except ConnectionRefusedError: print('refused')\nexcept OSError: print('timeout')"
    )
    return client.check_output(f"python3 -c {q(script)}")


def test_port_outside_passive_range_is_blocked(
    server: testinfra.host.Host, client: testinfra.host.Host
) -> None:
    port = PASSIVE_LAST + 51
    with listener(server, port):
        local = f"import socket; socket.create_connection(('127.0.0.1', {port}), 3)"
        assert server.run(f"python3 -c {q(local)}").rc == 0  # it listens: only the firewall can block it
        assert connect(client, host_name(server), port) == "timeout"


def test_port_inside_passive_range_is_open(server: testinfra.host.Host, client: testinfra.host.Host) -> None:
    port = PASSIVE_LAST
    with listener(server, port):
        assert connect(client, host_name(server), port) == "open"


def test_firewall_is_our_own_table_and_spares_others(server: testinfra.host.Host) -> None:
    server.check_output("nft add table inet someone_else && nft add chain inet someone_else keep")
    try:
        server.check_output("systemctl reload ftps-kit-firewall")
        tables = server.check_output("nft list tables")
        assert "table inet ftps_kit" in tables
        assert "table inet someone_else" in tables
        assert server.service("ftps-kit-firewall").is_enabled
    finally:
        server.run("nft delete table inet someone_else")


# --- users through the role, without a restart ---------------------------------------------
def run_users_playbook(limit: str, accounts: list[dict]) -> str:
    return run_playbook("users.yml", limit, {"ftps_users_accounts": accounts})


def run_playbook(playbook: str, limit: str, extra: dict, *args: str) -> str:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    env = ansible_env(ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    result = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            str(pathlib.Path(inventory).parent),
            str(ROOT / "playbooks" / playbook),
            "--limit",
            limit,
            "-e",
            json.dumps(extra),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return result.stdout


def recap_changed(output: str, name: str) -> int:
    match = re.search(rf"^{re.escape(name)}\s*:.*?changed=(\d+)", output, re.MULTILINE)
    assert match, output[-2000:]
    return int(match.group(1))


def test_user_added_and_removed_without_restart(
    server: testinfra.host.Host, client: testinfra.host.Host
) -> None:
    name = host_name(server)
    pid = server.check_output("systemctl show -P MainPID ftpsd")
    dave_password = secrets.token_urlsafe(12)
    listing = f"ftp://{name}/"
    base = list(SETTINGS["ftps_users_accounts"])

    run_users_playbook(name, [*base, {"name": "dave", "password": dave_password, "perm": "ro"}])
    assert curl(client, f"-u {q('dave:' + dave_password)} {listing}").rc == 0
    assert server.file("/srv/ftps/dave").user == "ftpsd"

    run_users_playbook(name, [*base, {"name": "dave", "state": "absent"}])
    assert curl(client, f"-u {q('dave:' + dave_password)} {listing}").rc == 67
    assert curl(client, f"-u {q('alice:' + password('alice'))} {listing}").rc == 0

    again = run_users_playbook(name, [*base, {"name": "dave", "state": "absent"}])
    assert recap_changed(again, name) == 0
    assert server.check_output("systemctl show -P MainPID ftpsd") == pid


def banner(client: testinfra.host.Host, name: str) -> str:
    connect = f"s = socket.create_connection(({name!r}, {CONTROL_PORT}), 10)"
    script = f"import socket\n{connect}\nprint(s.recv(200).decode())"
    return client.check_output(f"python3 -c {q(script)}")


def test_config_change_reloads_and_port_change_would_restart(
    servers: list[testinfra.host.Host], client: testinfra.host.Host
) -> None:
    """A banner/passive-range change is applied by a reload (MainPID kept) and served as soon as
    the play returns (`systemctl reload` waits for every worker: no retry here); the role restarts
    only for what a reload cannot apply (here: workers)."""
    server = servers[0]
    name = host_name(server)
    pid = server.check_output("systemctl show -P MainPID ftpsd")
    tags = ("--tags", "ftps_server", "-e", "ftps_server_wheelhouse_build=false")
    changed = {
        "ftps_server_banner": "ftpsd reload test",
        "ftps_server_passive_ports": [PASSIVE_FIRST, PASSIVE_LAST - 1],
    }
    try:
        output = run_playbook("site.yml", name, changed, *tags)
        assert "RUNNING HANDLER [ftpskit.ftps.ftps_server : Reload ftpsd]" in output
        assert "RUNNING HANDLER [ftpskit.ftps.ftps_server : Restart ftpsd]" not in output
        assert server.check_output("systemctl show -P MainPID ftpsd") == pid
        assert "ftpsd reload test" in banner(client, name)

        output = run_playbook("site.yml", name, {"ftps_server_workers": 2}, *tags)
        assert "RUNNING HANDLER [ftpskit.ftps.ftps_server : Restart ftpsd]" in output
        assert server.check_output("systemctl show -P MainPID ftpsd") != pid
    finally:
        run_playbook("site.yml", name, {}, *tags)
    assert "ftpsd reload test" not in banner(client, name)


def served_fingerprint(client: testinfra.host.Host, name: str) -> str:
    """SHA-256 fingerprint of the certificate a new explicit-FTPS session is served."""
    return client.check_output(
        f"openssl s_client -starttls ftp -connect {name}:{CONTROL_PORT} -servername {name} </dev/null"
        f" 2>/dev/null | {DER_SHA256}"
    )


def deployed_fingerprint(server: testinfra.host.Host) -> str:
    """SHA-256 fingerprint of the certificate ftps_pki deployed (``current``)."""
    return server.check_output(f"openssl x509 -in {PKI_CURRENT}/cert.pem | {DER_SHA256}")


def test_reload_fails_on_a_broken_certificate_and_keeps_serving(
    server: testinfra.host.Host, client: testinfra.host.Host
) -> None:
    """`current` pointed at a copy of the generation whose cert.pem is garbage: `systemctl reload`
    fails, naming the problem, ftpsd keeps running and serving the deployed certificate; once
    `current` is restored, a reload succeeds again."""
    name = host_name(server)
    deployed = deployed_fingerprint(server)
    pid = server.check_output("systemctl show -P MainPID ftpsd")
    target = server.check_output(f"readlink {PKI_CURRENT}")
    # Outside the PKI directory (ftps_pki's), inside what the unit sees (not /tmp: PrivateTmp).
    broken = "/etc/ftps-kit/reload-test-broken"
    server.check_output(f"rm -rf {broken} && cp -a {PKI_CURRENT}/ {broken}")
    server.check_output(f"echo 'not a certificate' > {broken}/cert.pem")
    try:
        server.check_output(f"ln -sfn {broken} {PKI_CURRENT}")
        reload = server.run("systemctl reload ftpsd")
        assert reload.rc != 0, reload.stdout
        assert served_fingerprint(client, name) == deployed
        # What the unit's ExecReload prints (to the journal), run here to read it directly.
        direct = server.run(
            f"runuser -u ftpsd -- /opt/ftpsd/venv/bin/ftpsd reload --config /etc/ftpsd/ftpsd.toml --pid {pid}"
        )
        assert direct.rc == 1
        assert direct.stderr.startswith("ftpsd: reload refused"), direct.stderr
        assert (
            f"still serving certificate sha256={deployed}: tls.certfile: {broken}/cert.pem holds no PEM"
            in direct.stderr
        )
    finally:
        server.run(f"ln -sfn {q(target)} {PKI_CURRENT} && rm -rf {broken}")
    assert server.service("ftpsd").is_running
    assert server.check_output("systemctl show -P MainPID ftpsd") == pid
    assert server.run("systemctl reload ftpsd").rc == 0
    assert served_fingerprint(client, name) == deployed
