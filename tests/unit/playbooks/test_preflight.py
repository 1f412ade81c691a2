"""playbooks/preflight.yml checks an inventory's variables on the controller, contacting no host.

Every host here is "reachable" only over SSH to a closed port of this machine (127.0.0.1:9, as in
test_slicing.py): a task that connected would make its host unreachable, and every run asserts
that no host was. The bad fleet is one inventory, one fault per host (a realistic fleet with one
mistake on each machine), run once: Ansible reports each host's failure on its own, and each must
be its first and only failure, naming the variable and the fix. The store's rule runs once per
play (run_once) and gets a run of its own. The lab and example inventories pass. Secrets (user
passwords, the CA passphrase, ACME keys, vault values) appear in no output, also at -vvv.
"""

from __future__ import annotations

import base64
import json
import pathlib
import subprocess
import sys

import pytest
import yaml

from tests.paths import ROOT
from tests.playbook import run_playbook

# SSH to a closed port: any connection attempt fails at once (unreachable).
NOWHERE = {
    "ansible_connection": "ssh",
    "ansible_host": "127.0.0.1",
    "ansible_port": 9,
    "ansible_ssh_common_args": "-o ConnectTimeout=2",
    "ansible_python_interpreter": "/usr/bin/python3",
}
NOWHERE_ARGS = [arg for key, value in NOWHERE.items() for arg in ("-e", f"{key}={value}")]
SECRETS = {
    "password": "Pw-Preflight-7731-user",
    "ca": "Pw-Preflight-7731-ca-passphrase",
    # a well-formed scrypt hash (ftpsd's format), of no password anyone knows
    "hash": "$scrypt$ln=15,r=8,p=1${}${}".format(
        base64.b64encode(b"Preflight-7731-s").decode().rstrip("="),
        base64.b64encode(b"Preflight-7731-hash-of-32-bytes!").decode().rstrip("="),
    ),
    "eab": "Pw-Preflight-7731-eab-hmac",
    "acme_account": "Pw-Preflight-7731-acme-account",
}
USER = {"name": "alice", "password": SECRETS["password"], "perm": "rw"}
ACME = {"ftps_pki_mode": "acme", "ftps_pki_san_fqdn_enabled": False, "ftps_pki_san_addresses_enabled": False}

# host -> the one bad setting it carries -> what its failure must say (the variable and the fix)
SERVER_CASES: dict[str, tuple[dict, str]] = {
    # ports
    "port-control": (
        {"ftps_server_control_port": 70000},
        "ftps_server_control_port (70000) must be 1..65535",
    ),
    "port-implicit": (
        {"ftps_server_control_port": 2121, "ftps_server_implicit_port": 2121},
        "ftps_server_implicit_port (2121) 0 (off) or 1..65535, and they must differ",
    ),
    "port-in-range": (
        {"ftps_server_control_port": 50010},
        "ftps_server_control_port (50010) overlaps ftps_server_passive_ports [50000, 50099]; move the port",
    ),
    "port-not-int": (
        {"ftps_server_control_port": "twenty-one"},
        "argument 'ftps_server_control_port' is of type str and we were unable to convert to int",
    ),
    # passive ranges
    "range-inverted": (
        {"ftps_server_passive_ports": [50099, 50000]},
        "got [50099, 50000] (inverted: first > last)",
    ),
    "range-low": (
        {"ftps_server_passive_ports": [80, 200]},
        "ftps_server_passive_ports must be [first, last] with 1024 <= first <= last <= 65535; got [80, 200]",
    ),
    "range-one": ({"ftps_server_passive_ports": [50000]}, "ftps_server_passive_ports must be [first, last]"),
    # users
    "user-dup": (
        {"ftps_users_accounts": [USER, {**USER, "perm": "ro"}]},
        "ftps_users_accounts[1] (name 'alice'): duplicate user name 'alice'",
    ),
    "user-slash": (
        {"ftps_users_accounts": [{**USER, "name": "../x"}]},
        "ftps_users_accounts[0] (name '../x'): 'name' must not contain '/'",
    ),
    "user-nopass": (
        {"ftps_users_accounts": [{"name": "carol", "password": ""}]},
        "'password' (or a pre-computed 'hash') is empty or missing",
    ),
    "user-perm": (
        {"ftps_users_accounts": [{**USER, "perm": "admin"}]},
        "value of perm must be one of: ro, rw, upload, got: admin found in ftps_users_accounts",
    ),
    # a deprecated alias, still checked: the message names the one name to set instead
    "user-files": (
        {"ftps_users_home_root": "/"},
        "ftps_users_home_root (\"/\") must be an absolute path other than '/';"
        " better, drop it and set ftps_server_data_dir",
    ),
    # keys
    "key-type": ({"ftps_pki_key_type": "rsa-512"}, "ftps_pki_key_type must be one of"),
    "key-ca-type": ({"ftps_pki_ca_key_type": "dsa"}, "ftps_pki_ca_key_type must be one of"),
    # SANs
    "san-bad-name": (
        {"ftps_pki_extra_sans": ["ftp_1!.example"]},
        "ftps_pki_extra_sans (or the inventory name): invalid DNS name in subject alternative name"
        " 'ftp_1!.example': use letters, digits and hyphens",
    ),
    "san-bad-ip": (
        {"ftps_pki_extra_sans": ["IP:300.1.1.1"]},
        "invalid IP address in subject alternative name",
    ),
    "san-none": (
        {
            "ftps_pki_san_hostname_enabled": False,
            "ftps_pki_san_fqdn_enabled": False,
            "ftps_pki_san_addresses_enabled": False,
        },
        "ftps_pki on san-none: the certificate would name nothing: enable ftps_pki_san_hostname_enabled",
    ),
    # modes and renewal
    "mode-bogus": ({"ftps_pki_mode": "letsencrypt"}, "ftps_pki_mode must be one of"),
    "renew-window": (
        {"ftps_pki_validity_days": 30, "ftps_pki_renew_before_days": 30},
        "ftps_pki_validity_days (30) must be greater than ftps_pki_renew_before_days (30), otherwise"
        " every run re-issues: raise the validity or lower the renewal window",
    ),
    "renew-negative": (
        {"ftps_pki_renew_before_days": -1},
        "ftps_pki_renew_before_days must be an integer 0-36500 days, got -1",
    ),
    # ftpsd's own rule (ftpskit_common.layout.renew_before_days_problem): the role accepted 40000
    # days before, and only ftpsd's config check refused them, once the host was being changed
    "renew-huge": (
        {"ftps_pki_validity_days": 50000, "ftps_pki_renew_before_days": 40000},
        "ftps_pki_renew_before_days must be an integer 0-36500 days, got 40000",
    ),
    # external certificates (mode provided)
    "provided-nocert": (
        {"ftps_pki_mode": "provided", "ftps_pki_provided_private_key": SECRETS["ca"]},
        "mode 'provided' needs ftps_pki_provided_certificate",
    ),
    "provided-nokey": (
        {"ftps_pki_mode": "provided", "ftps_pki_provided_certificate": "-----BEGIN CERTIFICATE-----"},
        "mode 'provided' needs ftps_pki_provided_private_key",
    ),
    # ACME settings
    "acme-dns": (
        {**ACME, "ftps_pki_acme_challenge_type": "dns-01", "ftps_pki_acme_eab_hmac_key": SECRETS["eab"]},
        "ftps_pki_acme_challenge_type dns-01 needs ftps_pki_acme_dns_hook",
    ),
    "acme-port": ({**ACME, "ftps_pki_acme_http01_port": 0}, "ftps_pki_acme_http01_port (0) must be 1..65535"),
    "acme-timeout": (
        {**ACME, "ftps_pki_acme_http01_timeout": 5},
        "ftps_pki_acme_http01_timeout (5) must be at least 10 seconds",
    ),
    "acme-cn": (
        {**ACME, "ftps_pki_common_name": "ftp.example.org"},
        "ftps_pki_common_name (ftp.example.org) must be one of the SANs (DNS:acme-cn) in mode acme:"
        " add it to ftps_pki_extra_sans",
    ),
    "acme-challenge": (
        {**ACME, "ftps_pki_acme_challenge_type": "tls-alpn-01"},
        "ftps_pki_acme_challenge_type must be one of: http-01, dns-01, got: tls-alpn-01",
    ),
    # firewall sources and rules
    "fw-sources": ({"ftps_firewall_sources": ["office-lan"]}, "ftps_firewall_sources (['office-lan'])"),
    "fw-ssh-sources": ({"ftps_firewall_ssh_sources": ["10.0.0.0/8", "bastion"]}, "ftps_firewall_ssh_sources"),
    "fw-rule-port": (
        {"ftps_firewall_rules": [{"name": "extra", "ports": [70000]}]},
        'ftps_firewall rule "extra" (ftps_firewall_dependent_rules or ftps_firewall_rules):'
        " port 70000 is not 1..65535",
    ),
    "fw-rule-range": (  # the one port-range rule (ftpskit_common.ports), from port 1 for a firewall rule
        {"ftps_firewall_rules": [{"name": "extra", "ranges": [[9000, 8000]]}]},
        'ftps_firewall rule "extra" (ftps_firewall_dependent_rules or ftps_firewall_rules):'
        " range [9000, 8000] must be [first, last] with 1 <= first <= last <= 65535;"
        " got [9000, 8000] (inverted: first > last)",
    ),
    "fw-rule-source": (
        {"ftps_firewall_rules": [{"name": "extra", "ports": [8021], "sources": ["*"]}]},
        "source * is not an address or CIDR",
    ),
    # the daemon's other settings
    "listen": (
        {"ftps_server_listen": ["localhost"]},
        "ftps_server_listen (['localhost']) must be a non-empty list",
    ),
    "per-ip": (
        {"ftps_server_max_connections": 10, "ftps_server_max_connections_per_ip": 20},
        "ftps_server_max_connections_per_ip (20) between 1 and ftps_server_max_connections (10)",
    ),
    "paths": (
        {"ftps_server_data_dir": "srv/ftp"},
        "ftps_server_data_dir (\"srv/ftp\") absolute paths other than '/'",
    ),
    # rotation settings (rotate.yml's)
    "rotate-serial": ({"ftps_rotate_serial": "0"}, "ftps_rotate_serial a positive number or percentage (0)"),
    "fleet-serial": (
        {"ftps_fleet_rotate_serial": "0"},
        "ftps_fleet_rotate_serial a positive number or percentage (0)",
    ),
    "fleet-mode": (
        {"ftps_rotate_pki_modes": ["internal_ca", "letsencrypt"]},
        "ftps_rotate_pki_modes a list of internal_ca, self_signed, external, provided, acme",
    ),
    "rotate-fail": (
        {"ftps_rotate_max_fail_percentage": "ten"},
        "ftps_rotate_max_fail_percentage a whole number (ten)",
    ),
    "rotate-within": (
        {"ftps_rotate_expiring_within_days": "soon"},
        'ftps_rotate_expiring_within_days must be "" or a number of days (soon)',
    ),
}
CLIENT_CASES: dict[str, tuple[dict, str]] = {
    "cli-verify": (
        {"ftps_client_verify_user": "alice"},
        "ftps_client_verify_user and ftps_client_verify_password go together",
    ),
    "cli-ca-src": (
        {"ftps_client_ca_certificates": [{"name": "corp", "src": "/nonexistent/corp-ca.pem"}]},
        "/nonexistent/corp-ca.pem does not exist on the controller",
    ),
}
# The kit's store is checked once per run (run_once): its case is a run of its own.
STORE_CASE = (
    {"ftps_pki_store": "key_manager"},
    "With ftps_pki_store=key_manager the inventory group ftps_ca holds exactly one host",
)
# Every good server carries secrets too: none may show in any output.
GOOD_SERVER = {
    "ftps_users_accounts": [USER, {"name": "bob", "hash": SECRETS["hash"], "perm": "ro"}],
    "ftps_pki_ca_passphrase": SECRETS["ca"],
    "ftps_pki_acme_eab_hmac_key": SECRETS["eab"],
    "ftps_pki_acme_account_passphrase": SECRETS["acme_account"],
}


def write_inventory(
    tmp_path: pathlib.Path, servers: dict[str, dict], clients: dict[str, dict]
) -> pathlib.Path:
    inventory = tmp_path / "inventory" / "hosts.yml"
    inventory.parent.mkdir()
    group = {"ftps_server_passive_ports": [50000, 50099], **GOOD_SERVER}
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "vars": NOWHERE,
                    "children": {
                        "ftps_servers": {"vars": group, "hosts": servers},
                        "ftps_clients": {"hosts": clients},
                    },
                }
            }
        )
    )
    return inventory


def run_json(inventory: pathlib.Path, *args: str, env: dict | None = None) -> tuple[dict, str]:
    """The run's results as the json callback reports them, and its whole output."""
    result = run_playbook(
        inventory,
        "preflight.yml",
        *args,
        env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", **(env or {})},
    )
    return json.loads(result.stdout), result.stdout + result.stderr


def failures(report: dict) -> dict[str, list[str]]:
    """host -> the message of each task that failed on it."""
    found: dict[str, list[str]] = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("failed"):
                    # a loop's failure: the failed items' messages (an assert's: evaluated_to false)
                    items = [
                        item
                        for item in result.get("results", [])
                        if item.get("failed") or item.get("evaluated_to") is False
                    ]
                    parts = [str(r.get("msg", "")) for r in items or [result]]
                    text = " ".join([*parts, *map(str, result.get("argument_errors", []))])
                    found.setdefault(host, []).append(" ".join(text.split()))
    return found


def assert_no_secret(output: str) -> None:
    for name, secret in SECRETS.items():
        assert secret not in output, f"the {name} secret is in the output"


def assert_nothing_contacted(report: dict) -> None:
    stats = report["stats"]
    assert stats, report
    assert all(s["unreachable"] == 0 and s["changed"] == 0 for s in stats.values()), stats


@pytest.fixture(scope="module")
def bad_fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    tmp_path = tmp_path_factory.mktemp("bad_fleet")
    servers = {"good-srv": {}, **{host: overrides for host, (overrides, _) in SERVER_CASES.items()}}
    clients = {"good-cli": {}, **{host: overrides for host, (overrides, _) in CLIENT_CASES.items()}}
    inventory = write_inventory(tmp_path, servers, clients)
    return run_json(inventory, "-e", json.dumps({"ftps_pki_store_dir": str(tmp_path / "store")}))


def test_bad_fleet_contacts_no_host_and_keeps_good_hosts(bad_fleet: tuple[dict, str]) -> None:
    report, output = bad_fleet
    assert_nothing_contacted(report)
    assert set(failures(report)) == set(SERVER_CASES) | set(CLIENT_CASES)
    assert report["stats"]["good-srv"]["failures"] == 0
    assert report["stats"]["good-cli"]["failures"] == 0
    assert_no_secret(output)


@pytest.mark.parametrize("host", [*SERVER_CASES, *CLIENT_CASES])
def test_each_bad_host_fails_once_naming_variable_and_fix(bad_fleet: tuple[dict, str], host: str) -> None:
    report, _ = bad_fleet
    expected = {**SERVER_CASES, **CLIENT_CASES}[host][1]
    messages = failures(report).get(host, [])
    assert len(messages) == 1, messages
    assert expected in messages[0], messages[0]


def test_the_store_setting(tmp_path: pathlib.Path) -> None:
    overrides, expected = STORE_CASE
    inventory = write_inventory(tmp_path, {"srv1": {}}, {})
    report, output = run_json(
        inventory, "-e", json.dumps({"ftps_pki_store_dir": str(tmp_path / "store"), **overrides})
    )
    assert_nothing_contacted(report)
    messages = failures(report).get("srv1", [])
    assert len(messages) == 1 and expected in messages[0], messages
    assert_no_secret(output)


def example_vault(tmp_path: pathlib.Path) -> tuple[pathlib.Path, dict]:
    password = tmp_path / "vault-password"
    password.write_text("ftps-kit-example\n")
    view = subprocess.run(
        [
            str(pathlib.Path(sys.executable).with_name("ansible-vault")),
            "view",
            "--vault-password-file",
            str(password),
            str(ROOT / "inventories/example/group_vars/all/vault.yml"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return password, yaml.safe_load(view.stdout)


def assert_passed_untouched(result: subprocess.CompletedProcess[str]) -> None:
    """rc 0, every host in the recap ok, none unreachable, failed or changed."""
    recap = result.stdout.split("PLAY RECAP", 1)[-1].splitlines()[1:]
    recap = [line for line in recap if ": ok=" in line]
    assert result.returncode == 0 and recap, result.stdout[-3000:]
    for line in recap:
        assert " changed=0 " in line and " unreachable=0 " in line and " failed=0 " in line, line


@pytest.mark.parametrize("name", ["example", "lab"])
def test_good_inventory_passes_without_secrets_at_vvv(tmp_path: pathlib.Path, name: str) -> None:
    """The real inventory, every host made unreachable by extra vars (which beat the inventory's
    connection settings); at -vvv, with the default output, none of its secrets: the lab's
    passwords and a CA passphrase from the environment, the example's vault values."""
    args = [*NOWHERE_ARGS, "-vvv"]
    secrets = [*SECRETS.values()]
    if name == "example":
        password, vault = example_vault(tmp_path)
        args += ["--vault-password-file", str(password)]
        secrets += [str(value) for value in vault.values()]
    else:
        lab = yaml.safe_load((ROOT / "inventories/lab/group_vars/all/vault.yml").read_text())
        secrets += [str(value) for value in lab.values()]
    result = run_playbook(
        ROOT / "inventories" / name, "preflight.yml", *args, env={"FTPS_KIT_LAB_CA_PASSPHRASE": SECRETS["ca"]}
    )
    assert_passed_untouched(result)
    output = result.stdout + result.stderr
    assert "ESTABLISH SSH CONNECTION" not in output
    assert "Check ftps_users' variables" in output
    for secret in secrets:
        assert secret not in output


def test_bad_fleet_shows_no_secret_at_vvv(tmp_path: pathlib.Path) -> None:
    """Failures next to secrets (a user's password in a failing account list, the CA passphrase
    and ACME keys beside a failing PKI setting), at -vvv with the default output."""
    bad = {
        host: SERVER_CASES[host][0]
        for host in ("user-dup", "user-perm", "mode-bogus", "provided-nocert", "acme-dns")
    }
    inventory = write_inventory(tmp_path, {"good-srv": {}, **bad}, {})
    extra = json.dumps({"ftps_pki_store_dir": str(tmp_path / "store")})
    result = run_playbook(inventory, "preflight.yml", "-vvv", "-e", extra)
    assert result.returncode == 2, result.stdout[-3000:]
    output = result.stdout + result.stderr
    assert "ESTABLISH SSH CONNECTION" not in output
    assert "duplicate user name 'alice'" in output and "must be one of" in output
    assert_no_secret(output)
