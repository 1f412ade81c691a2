"""docs/design.md's map, "One owner per fact", checked where a file can show it.

- No role's literal default equals (or, for a path, lies under) another role's literal default,
  except the pairs design.md lists as not yet one (KNOWN_SHARED): a new restatement fails, and so
  does a listed one that is gone (then the list and the page must lose it).
- No playbook writes ``X | default(...)`` for a role variable X, except KNOWN_PLAYBOOK_DEFAULTS;
  the walks issue 24 fixed (PKI location, group, key type, passive range, renewal window) are
  not in it.
- The passive range and the renewal window: one validator each where the map says, one default
  per program, and every playbook input of those walks checked by a preflight.
"""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml

from ftpsd.config import ServerConfig, TLSConfig
from tests.paths import ROOT

ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "defaults" / "main.yml").is_file())
# the fleet's code: the playbooks and the role their workflows moved into (ftps_fleet)
FLEET_ROLE = ROOT / "roles" / "ftps_fleet"
PLAYBOOK_FILES = sorted([*(ROOT / "playbooks").rglob("*.yml"), *FLEET_ROLE.rglob("*.yml")])


def _defaults(role: pathlib.Path) -> dict:
    return yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}


DEFAULTS = {role.name: _defaults(role) for role in ROLES}
ROLE_OF = {name: role for role, values in DEFAULTS.items() for name in values}

# Literal defaults that two roles still share (docs/design.md, "Not yet one"). Each entry: the
# variables that hold the same fact in different roles.
# The variables whose default is the daemon's name, "ftpsd": its group (four variables for one
# group: the debt design.md names), its user, service and package.
FTPSD_NAMED = {
    "ftps_pki_group",
    "ftps_server_group",
    "ftps_users_home_group",
    "ftps_users_file_group",
    "ftps_server_user",
    "ftps_users_home_owner",
    "ftps_pki_reload_service",
    "ftps_fleet_rotate_reload_service",
    "ftps_server_package",
}
KNOWN_SHARED = {
    *(frozenset({a, b}) for a in FTPSD_NAMED for b in FTPSD_NAMED if ROLE_OF[a] != ROLE_OF[b]),
    # the nftables table both roles own a chain in (one table name, by design)
    frozenset({"ftps_firewall_nft_table", "ftps_pki_acme_nft_table"}),
    # the users file and the data root
    frozenset({"ftps_server_users_file", "ftps_users_file"}),
    frozenset({"ftps_server_data_dir", "ftps_users_home_root"}),
    frozenset({"ftps_server_config_dir", "ftps_users_file"}),
    # ftps_server's TLS paths spell out ftps_pki's layout
    frozenset({"ftps_pki_dir", "ftps_server_tls_certfile"}),
    frozenset({"ftps_pki_dir", "ftps_server_tls_keyfile"}),
    frozenset({"ftps_pki_dir", "ftps_server_tls_chainfile"}),
}

# Playbook restatements of a role default not yet replaced by a published fact (design.md).
KNOWN_PLAYBOOK_DEFAULTS = {
    "ftps_server_control_port",
    "ftps_server_implicit_port",
    "ftps_server_listen",
    "ftps_server_venv",
    "ftps_server_config_dir",
    "ftps_pki_mode",
    "ftps_pki_ca_passphrase",
    "ftps_pki_ca_key_type",
    "ftps_pki_ca_validity_days",
    "ftps_users_accounts",
    "ftps_client_pins_enabled",
    "ftps_client_probe_concurrency",
    # client certificates (merged from main at the end of issue 24's session; not yet published)
    "ftps_pki_client_ca",
    "ftps_pki_client_certificates",
}
# The walks issue 24 fixed: never restated in a playbook again.
FIXED = {
    "ftps_pki_dir",
    "ftps_pki_group",
    "ftps_pki_key_type",
    "ftps_pki_renew_before_days",
    "ftps_server_passive_ports",
    "ftps_server_metrics_renew_before_days",
}


def _shared_literals() -> set[frozenset[str]]:
    found: set[frozenset[str]] = set()
    items = [
        (name, value)
        for values in DEFAULTS.values()
        for name, value in values.items()
        if isinstance(value, str) and value and "{{" not in value
    ]
    for name, value in items:
        for other, other_value in items:
            if ROLE_OF[name] == ROLE_OF[other]:
                continue
            if value == other_value or (value.startswith("/") and other_value.startswith(value + "/")):
                found.add(frozenset({name, other}))
    return found


def test_no_role_restates_another_roles_default() -> None:
    found = _shared_literals()
    assert not found - KNOWN_SHARED, (
        f"a role restates another role's default: {sorted(map(sorted, found - KNOWN_SHARED))}"
    )
    assert not KNOWN_SHARED - found, (
        f"fixed, drop from KNOWN_SHARED and design.md: {sorted(map(sorted, KNOWN_SHARED - found))}"
    )


DEFAULT_OF = re.compile(r"\b(ftps_[a-z0-9_]+)\s*\|\s*default\(")


def _playbook_restatements() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in PLAYBOOK_FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in DEFAULT_OF.finditer(line):
                if match.group(1) in ROLE_OF:
                    found.setdefault(match.group(1), []).append(f"{path.relative_to(ROOT)}:{number}")
    return found


def test_playbooks_restate_no_role_default() -> None:
    found = _playbook_restatements()
    assert not set(found) & FIXED, {name: found[name] for name in set(found) & FIXED}
    new = set(found) - KNOWN_PLAYBOOK_DEFAULTS
    assert not new, f"read the owner's published fact instead: { {name: found[name] for name in new} }"
    assert not KNOWN_PLAYBOOK_DEFAULTS - set(found), (
        "fixed, drop from KNOWN_PLAYBOOK_DEFAULTS and design.md:",
        sorted(KNOWN_PLAYBOOK_DEFAULTS - set(found)),
    )


def _grep(pattern: str, *globs: str) -> list[str]:
    rx = re.compile(pattern)
    hits = []
    for glob in globs:
        for path in sorted(ROOT.glob(glob)):
            if path.is_file():
                hits += [
                    f"{path.relative_to(ROOT)}" for line in path.read_text().splitlines() if rx.search(line)
                ]
    return hits


CODE = (
    "roles/**/*.yml",
    "roles/**/*.j2",
    "playbooks/**/*.yml",
    "plugins/**/*.py",
    "src/ftpsd/*.py",
    "contrib/**/*",
)


def test_passive_range_one_default_per_program() -> None:
    hits = _grep(r"50000, 50099|50000-50099", *CODE)
    # ftps_server's default and its argument spec (a mirror test_role_docs.py keeps equal),
    # ftpsd's own default for a hand-written configuration
    assert sorted(hits) == sorted(
        [
            "roles/ftps_server/defaults/main.yml",
            "roles/ftps_server/meta/argument_specs.yml",
            "src/ftpsd/config.py",
        ]
    )
    assert list(ServerConfig.passive_ports) == DEFAULTS["ftps_server"]["ftps_server_passive_ports"]


def test_passive_range_one_validator() -> None:
    # the role and the firewall call the filter; nobody writes the bounds in Jinja again
    assert _grep(r"ftps_port_range_problem\('passive'\)", "roles/**/*.yml") == [
        "roles/ftps_server/tasks/preflight.yml"
    ]
    assert _grep(r"ftps_port_range_problem\('firewall'\)", "roles/**/*.yml") == [
        "roles/ftps_firewall/tasks/preflight.yml"
    ]
    assert _grep(r"passive_ports\[[01]\] \| int [<>]=", "roles/**/*.yml") == []
    assert _grep(r"range\[[01]\] \| int [<>]", "roles/**/*.yml") == []
    assert _grep(r"passive_ports_problem\(", "src/ftpsd/*.py") == ["src/ftpsd/config.py"]


def test_renewal_window_one_name_one_default() -> None:
    # one default: ftps_pki's (defaults + spec mirror) and ftpsd's own for a hand-written config
    assert DEFAULTS["ftps_pki"]["ftps_pki_renew_before_days"] == TLSConfig.renew_before_days
    assert "ftps_server_metrics_renew_before_days" not in DEFAULTS["ftps_server"]
    assert _grep(r"renew_before_days[^\n]*default\(30\)|default\(30\)", *CODE) == []
    # no hidden flag: the units pass no window, ftpsd reads tls.renew_before_days
    assert _grep(r"--renew-before-days", "roles/**/*.j2") == []
    assert _grep(r"^renew_before_days = ", "roles/ftps_server/templates/ftpsd.toml.j2") == [
        "roles/ftps_server/templates/ftpsd.toml.j2"
    ]


@pytest.mark.parametrize(
    ("variable", "preflight"),
    [
        ("ftps_rotate_expiring_within_days", "roles/ftps_fleet/tasks/settings.yml"),
        ("ftps_report_warn_days", "playbooks/report.yml"),
        ("ftps_server_metrics_renew_before_days", "roles/ftps_server/tasks/preflight.yml"),
    ],
)
def test_walk_inputs_are_checked_before_use(variable: str, preflight: str) -> None:
    """Each playbook input (or deprecated alias) of the fixed walks is asserted on in a preflight."""
    tasks = yaml.safe_load((ROOT / preflight).read_text())
    if isinstance(tasks, list) and tasks and "hosts" in tasks[0]:
        tasks = [task for play in tasks for task in play.get("tasks", [])]
    asserts = [task for task in tasks if "ansible.builtin.assert" in task]
    assert any(variable in yaml.safe_dump(task) or _reads(task, variable) for task in asserts), (
        f"no assert in {preflight} checks {variable}"
    )


def _reads(task: dict, variable: str) -> bool:
    """The assert reads a play variable whose value is the input (``__report_warn_days``)."""
    text = yaml.safe_dump(task)
    return any(name in text for name in re.findall(r"(__[a-z_]+):[^\n]*" + variable, _PLAY_VARS))


_PLAY_VARS = "\n".join(path.read_text() for path in PLAYBOOK_FILES)


def test_layout_is_published_from_the_owners_variables() -> None:
    tasks = yaml.safe_load((ROOT / "roles/ftps_pki/tasks/layout.yml").read_text())
    (layout,) = [task["ansible.builtin.set_fact"]["ftps_pki_layout"] for task in tasks]
    assert set(layout) == {"dir", "current", "cert", "key", "chain", "group", "key_type", "renew_before_days"}
    for key, value in layout.items():
        assert "default(" not in value and re.search(r"\{\{ ftps_pki_[a-z_]+", value), (key, value)


def test_fleet_pki_modes_are_ftps_pkis() -> None:
    """ftps_fleet's mode filter accepts exactly ftps_pki's modes (its spec and its check)."""
    pki = yaml.safe_load((ROOT / "roles/ftps_pki/meta/argument_specs.yml").read_text())["argument_specs"]
    modes = pki["main"]["options"]["ftps_pki_mode"]["choices"]
    fleet = yaml.safe_load((FLEET_ROLE / "meta/argument_specs.yml").read_text())["argument_specs"]
    for entry in ("main", "settings"):
        assert fleet[entry]["options"]["ftps_fleet_rotate_pki_modes"]["choices"] == modes, entry
    assert yaml.safe_load((FLEET_ROLE / "vars/main.yml").read_text())["__ftps_fleet_pki_modes"] == modes


# Playbooks that are wiring only (issue 24 item 2): plays of hosts, play keywords, tags and
# ftps_fleet / role entry points. Extend this list as each playbook is converted.
WIRING_PLAYBOOKS = ["rotate.yml", "site.yml"]
WIRING_MAX_LINES = 40
# inventory groups (the kit's, and the ones the rotation's selection makes), not variables
GROUPS = {
    "ftps_servers",
    "ftps_clients",
    "ftps_ca",
    "ftps_rotate_selected",
    "ftps_rotate_skipped",
    "ftps_rotate_unusable",
}
VARIABLE = re.compile(r"(?<![\w.])ftps_[a-z0-9_]*[a-z0-9]\b")


def _declared() -> set[str]:
    """Every option of every entry point of every role's argument specs."""
    names: set[str] = set()
    for role in (ROOT / "roles").iterdir():
        specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        for entry in specs.values():
            names |= set((entry or {}).get("options") or {})
    return names


@pytest.mark.parametrize("name", WIRING_PLAYBOOKS)
def test_converted_playbooks_are_wiring_with_declared_inputs(name: str) -> None:
    text = (ROOT / "playbooks" / name).read_text()
    lines = text.splitlines()
    assert len(lines) <= WIRING_MAX_LINES, (
        f"{name}: {len(lines)} lines; move logic into an ftps_fleet entry point"
    )
    roles = {p.name for p in (ROOT / "roles").iterdir()}
    used = set(VARIABLE.findall(text)) - GROUPS - roles
    undeclared = sorted(used - _declared())
    assert not undeclared, f"{name} uses variables no role argument spec declares: {undeclared}"
