"""docs/design.md's map, "One owner per fact", checked where a file can show it.

- No role's literal default equals (or, for a path, lies under) another role's literal default,
  except the pairs design.md lists as not yet one (KNOWN_SHARED): a new restatement fails, and so
  does a listed one that is gone (then the list and the page must lose it).
- No playbook writes ``X | default(...)`` for a role variable X, except KNOWN_PLAYBOOK_DEFAULTS;
  the walks issue 24 fixed (PKI location, group, key type, passive range, renewal window) are
  not in it.
- The passive range and the renewal window: one validator each where the map says, one default
  per program, and every playbook input of those walks checked by a preflight.
- The daemon's group and ftps_server's TLS paths: ftps_pki's (ftps_pki_group, ftps_pki_dir), read
  by ftps_server and ftps_users from ftps_pki_layout, which each reader publishes first through
  ftps_pki's ``layout`` entry point when ftps_pki is not in the run; the old group names are
  deprecated aliases, checked and warned about by the preflights.
- The daemon's user, its users file and its data root: ftps_server's (ftps_server_user,
  ftps_server_users_file, ftps_server_data_dir), read by ftps_users from ftps_server_layout, which
  it publishes first through ftps_server's ``layout`` entry point when ftps_server is not in the
  run; ftps_users' old names are deprecated aliases.
- What ftpsd and the roles share with it (the passive range, the PKI's location) is written once,
  in ``ftpskit_common``: ftpsd, the modules' argument specs and the roles' defaults (through the
  ``ftpskit.ftps.ftpsd_default`` lookup) read that constant.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import re

import pytest
import yaml

from ftpsd.config import ServerConfig, TLSConfig
from ftpskit_common import layout, ports
from ftpskit_common.passwd import USERS_FILE
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
# The variables whose default is the daemon's name, "ftpsd": its group (ftps_pki's alone), its
# user (ftps_server's alone), service and package.
FTPSD_NAMED = {
    "ftps_pki_group",
    "ftps_server_user",
    "ftps_pki_reload_service",
    "ftps_fleet_rotate_reload_service",
    "ftps_server_package",
}
KNOWN_SHARED = {
    *(frozenset({a, b}) for a in FTPSD_NAMED for b in FTPSD_NAMED if ROLE_OF[a] != ROLE_OF[b]),
    # the nftables table both roles own a chain in (one table name, by design)
    frozenset({"ftps_firewall_nft_table", "ftps_pki_acme_nft_table"}),
}

# Playbook restatements of a role default not yet replaced by a published fact (design.md).
KNOWN_PLAYBOOK_DEFAULTS = {
    "ftps_server_venv",
    "ftps_server_config_dir",
    "ftps_pki_mode",
    "ftps_pki_ca_passphrase",
    "ftps_users_accounts",
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
    "ftps_server_tls_certfile",
    "ftps_server_tls_keyfile",
    "ftps_server_tls_chainfile",
    # ftps_server_listening (its preflight, its entry point `listening`)
    "ftps_server_control_port",
    "ftps_server_implicit_port",
    "ftps_server_listen",
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
                if match.group(1) in ROLE_OF and ROLE_OF[match.group(1)] != "ftps_fleet":
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


# How a role default reads ftpsd's own (plugins/lookup/ftpsd_default.py).
def _ftpsd_default(name: str) -> str:
    return f"{{{{ lookup('ftpskit.ftps.ftpsd_default', '{name}') }}}}"


def _spec_default(role: str, name: str) -> object:
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return specs["argument_specs"]["main"]["options"][name]["default"]


def _spec_names_template_default(role: str, name: str, template: str) -> bool:
    """A typed option whose default is a template declares none in its spec (antsibull-docs checks
    a default against the type); its description names it (test_role_docs.py)."""
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    option = specs["argument_specs"]["main"]["options"][name]
    return "default" not in option and f"Default: C({template})" in " ".join(option["description"])


def _readmes_writing(pattern: str) -> list[str]:
    """The role READMEs whose own words match: their generated variable tables show a lookup
    default's value (lab/role_docs.py, tests/unit/roles/test_role_docs.py), no second definition."""
    found = []
    for readme in sorted(ROOT.glob("roles/*/README.md")):
        text = readme.read_text()
        if "<!-- BEGIN VARIABLES" in text:
            before, rest = text.split("<!-- BEGIN VARIABLES", 1)
            text = before + rest.split("<!-- END VARIABLES -->", 1)[1]
        if re.search(pattern, text):
            found.append(str(readme.relative_to(ROOT)))
    return found


def test_passive_range_one_definition() -> None:
    """One definition in the whole code: ftpskit_common.ports, beside the rule. ftpsd's config
    reads it; ftps_server's default (and its spec mirror) read it through the lookup, so the
    daemon's configuration and the firewall rule built from the role's variable name those ports."""
    from ansible_collections.ftpskit.ftps.plugins.lookup.ftpsd_default import LookupModule

    pattern = r"50000, ?50099|50000-50099|50000\b[^\n]*50099"
    hits = _grep(pattern, *CODE, "plugins/**/*.yml")
    assert hits == ["plugins/module_utils/ftpskit_common/ports.py"], hits
    assert _readmes_writing(pattern) == []
    assert ServerConfig.passive_ports is ports.PASSIVE_PORTS_DEFAULT
    assert DEFAULTS["ftps_server"]["ftps_server_passive_ports"] == _ftpsd_default("passive_ports")
    assert _spec_names_template_default(
        "ftps_server", "ftps_server_passive_ports", _ftpsd_default("passive_ports")
    )
    assert LookupModule().run(["passive_ports"]) == [list(ports.PASSIVE_PORTS_DEFAULT)]


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
    """One definition of the number in the whole code: ftpskit_common.layout.RENEW_BEFORE_DAYS.
    ftpsd's TLS default, the modules' defaults and the report's read it; ftps_pki's default (and its
    spec mirror) read it through the lookup. The modules' documentation states it (validate-modules
    compares it with the spec), kept equal here."""
    from ansible_collections.ftpskit.ftps.plugins.filter import ftps_report as ftps_report_filter
    from ansible_collections.ftpskit.ftps.plugins.lookup.ftpsd_default import LookupModule
    from ansible_collections.ftpskit.ftps.plugins.module_utils import ftps_report

    assert TLSConfig.renew_before_days == layout.RENEW_BEFORE_DAYS
    assert DEFAULTS["ftps_pki"]["ftps_pki_renew_before_days"] == _ftpsd_default("renew_before_days")
    assert _spec_names_template_default(
        "ftps_pki", "ftps_pki_renew_before_days", _ftpsd_default("renew_before_days")
    )
    assert LookupModule().run(["renew_before_days"]) == [layout.RENEW_BEFORE_DAYS]
    assert (
        inspect.signature(ftps_report.build_row).parameters["warn_days"].default == layout.RENEW_BEFORE_DAYS
    )
    assert "ftps_server_metrics_renew_before_days" not in DEFAULTS["ftps_server"]
    assert _grep(r"renew_before_days[^\n]*default\(30\)|default\(30\)", *CODE) == []
    # the number: its definition; in the modules only their documentation, equal to the spec
    hits = sorted(set(_grep(r"^(?!\s*sample:).*((renew|warn)[a-z_]*\W.*\b30\b|\b30\b.*renew)", *CODE)))
    assert hits == [], hits
    assert _grep(r"^RENEW_BEFORE_DAYS = ", *CODE) == ["plugins/module_utils/ftpskit_common/layout.py"]
    filter_doc = yaml.safe_load((ROOT / "plugins/filter/ftps_report.yml").read_text())["DOCUMENTATION"]
    assert filter_doc["options"]["warn_days"]["default"] == layout.RENEW_BEFORE_DAYS
    assert (
        inspect.signature(ftps_report_filter.ftps_report).parameters["warn_days"].default
        == layout.RENEW_BEFORE_DAYS
    )
    for module, option in (
        ("ftps_pki_request", "renew_before_days"),
        ("ftps_pki_client_report", "warn_days"),
    ):
        doc = yaml.safe_load(
            importlib.import_module(
                f"ansible_collections.ftpskit.ftps.plugins.modules.{module}"
            ).DOCUMENTATION
        )
        assert doc["options"][option]["default"] == layout.RENEW_BEFORE_DAYS, module
    # in roles/, no task or template writes the number (the README table is generated from the spec)
    assert _grep(r"renew[^\n]*\b30\b|\b30\b[^\n]*renew|\(30\)", "roles/**/*.yml", "roles/**/*.j2") == []
    # no hidden flag: the units pass no window, ftpsd reads tls.renew_before_days
    assert _grep(r"--renew-before-days", "roles/**/*.j2") == []
    assert _grep(r"^renew_before_days = ", "roles/ftps_server/templates/ftpsd.toml.j2") == [
        "roles/ftps_server/templates/ftpsd.toml.j2"
    ]


def test_renewal_window_one_validator() -> None:
    """One rule (ftpskit_common.layout.renew_before_days_problem): ftpsd's config check calls it, and
    ftps_pki's preflight through the filter; nobody writes the bounds again."""
    assert _grep(r"renew_before_days_problem\(", "src/ftpsd/*.py") == ["src/ftpsd/config.py"]
    assert _grep(r"ftps_renew_window_problem", "roles/**/*.yml") == ["roles/ftps_pki/tasks/variables.yml"] * 2
    assert _grep(r"36500", *CODE) == ["plugins/module_utils/ftpskit_common/layout.py"]
    assert _grep(r"renew_before_days \| int <", "roles/**/*.yml") == []


@pytest.mark.parametrize(
    ("variable", "preflight"),
    [
        ("ftps_rotate_expiring_within_days", "roles/ftps_fleet/tasks/settings.yml"),
        ("ftps_report_warn_days", "roles/ftps_fleet/tasks/report_read.yml"),
        ("ftps_server_metrics_renew_before_days", "roles/ftps_server/tasks/preflight.yml"),
        ("ftps_server_group", "roles/ftps_server/tasks/preflight.yml"),
        ("ftps_users_home_group", "roles/ftps_users/tasks/preflight.yml"),
        ("ftps_users_file_group", "roles/ftps_users/tasks/preflight.yml"),
        ("ftps_users_file", "roles/ftps_users/tasks/preflight.yml"),
        ("ftps_users_home_root", "roles/ftps_users/tasks/preflight.yml"),
        ("ftps_users_home_owner", "roles/ftps_users/tasks/preflight.yml"),
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
    """The assert reads a play variable whose value is the input (``__ftps_fleet_report_warn_days``)."""
    text = yaml.safe_dump(task)
    return any(name in text for name in re.findall(r"(__[a-z_]+):[^\n]*" + variable, _PLAY_VARS))


_PLAY_VARS = "\n".join(path.read_text() for path in PLAYBOOK_FILES)


def test_layout_is_published_from_the_owners_variables() -> None:
    tasks = yaml.safe_load((ROOT / "roles/ftps_pki/tasks/layout.yml").read_text())
    (layout,) = [task["ansible.builtin.set_fact"]["ftps_pki_layout"] for task in tasks]
    assert set(layout) == {
        "dir",
        "current",
        "cert",
        "key",
        "chain",
        "group",
        "key_type",
        "renew_before_days",
        "client_ca_enabled",
        "client_ca_file",
        "client_crl_file",
    }
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
WIRING_PLAYBOOKS = [
    "rotate.yml",
    "site.yml",
    # h24fleet2's part
    "ca_rollover.yml",
    "report.yml",
    "revoke.yml",
    "migrate_store.yml",
    "client_cert.yml",
    "preflight.yml",
    # h24wire's part: rotate.yml's pin steps (ftps_fleet's `pins`)
    "publish_pins.yml",
]
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


def _set_facts(node: object) -> set[str]:
    """The names every ``set_fact`` in a task list (blocks included) sets."""
    names: set[str] = set()
    if isinstance(node, list):
        for item in node:
            names |= _set_facts(item)
    elif isinstance(node, dict):
        args = node.get("ansible.builtin.set_fact")
        if isinstance(args, dict):
            names |= set(args) - {"cacheable"}
        for value in node.values():
            names |= _set_facts(value)
    return names


def _published() -> set[str]:
    """A role's public outputs: the facts its tasks set that its README documents (`name`)."""
    names: set[str] = set()
    for role in ROLES:
        readme = (role / "README.md").read_text()
        for path in (role / "tasks").glob("*.yml"):
            names |= {n for n in _set_facts(yaml.safe_load(path.read_text())) if f"`{n}`" in readme}
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
    undeclared = sorted(used - _declared() - _published())
    assert not undeclared, (
        f"{name} uses variables that are neither an input a role argument spec declares nor an output a role "
        f"publishes (set by its tasks, documented in its README): {undeclared}"
    )


# ---- issue 24 item 2: a wired playbook's plays only name role entry points ----
# The wiring playbooks except site.yml (its server play lists roles: test_site_yml_wiring), which
# the check above covers. rotate.yml's batched play has the batch keywords, read from ftps_fleet's
# settings.
WIRED_PLAYBOOKS = [name for name in WIRING_PLAYBOOKS if name != "site.yml"]
_PLAY_KEYS = {
    *("name", "hosts", "gather_facts", "become", "any_errors_fatal", "tags", "tasks", "connection"),
    *("serial", "max_fail_percentage"),
}
_IMPORT_KEYS = {"name", "ansible.builtin.import_playbook", "when", "vars"}


@pytest.mark.parametrize("name", WIRED_PLAYBOOKS)
def test_wired_playbook_plays_only_name_entry_points(name: str) -> None:
    text = (ROOT / "playbooks" / name).read_text()
    for play in yaml.safe_load(text):
        if "ansible.builtin.import_playbook" in play:
            assert set(play) <= _IMPORT_KEYS, (name, sorted(set(play) - _IMPORT_KEYS))
            continue
        assert set(play) <= _PLAY_KEYS, (name, play["name"], sorted(set(play) - _PLAY_KEYS))
        for task in play["tasks"]:
            include = task.get("ansible.builtin.include_role") or task.get("ansible.builtin.import_role")
            assert include and set(task) == {"name", *(k for k in task if k.endswith("_role"))}, (name, task)
            assert include["name"].startswith("ftpskit.ftps.") and include.get("tasks_from"), (name, task)
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert "default(" not in code, f"{name}: a playbook restates no default (the role's defaults hold them)"


# ---- issue 24 item 2: wiring is ordinary block-style YAML that reads no role internals ----
# A task (or any mapping) written in flow style, ``- {name: ..., ansible.builtin.include_role: {...}}``
# or ``vars: {...}``: a line budget met by packing, not by wiring. Jinja's ``{{`` is not one.
FLOW_MAPPING = re.compile(r"(^\s*-\s*\{(?!\{))|(:\s*\{(?!\{))")
# ``__`` names are a role's internals (STYLE.md): a playbook reads a role's published outputs.
INTERNAL = re.compile(r"(?<!\w)__[a-z][a-z0-9_]*")


def _code_lines(name: str) -> list[str]:
    """The playbook's lines without comments."""
    return [
        line.split(" #", 1)[0]
        for line in (ROOT / "playbooks" / name).read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]


@pytest.mark.parametrize("name", WIRING_PLAYBOOKS)
def test_wiring_playbooks_are_block_style(name: str) -> None:
    flow = [line.strip() for line in _code_lines(name) if FLOW_MAPPING.search(line)]
    assert not flow, f"{name}: write tasks and mappings in block style, not flow style: {flow}"


@pytest.mark.parametrize("name", WIRING_PLAYBOOKS)
def test_wiring_playbooks_read_no_role_internals(name: str) -> None:
    internals = sorted({m for line in _code_lines(name) for m in INTERNAL.findall(line)})
    assert not internals, f"{name} reads role internals (publish a documented output instead): {internals}"


# The roles of site.yml's server play and its client play's ftps_client tag their own tasks: every
# task of the table of contents carries the role's name (or `always`), handed to what it includes
# (`apply`), so `--tags ftps_server` and `--skip-tags ftps_server` select a role's tasks without a
# tag on the play's role entry.
SELF_TAGGING = ("ftps_pki", "ftps_server", "ftps_users", "ftps_firewall", "ftps_client")


@pytest.mark.parametrize("role", SELF_TAGGING)
def test_site_roles_tag_their_own_tasks(role: str) -> None:
    for task in yaml.safe_load((ROOT / "roles" / role / "tasks" / "main.yml").read_text()):
        tags = set(task.get("tags") or [])
        assert role in tags or tags == {"always"}, (role, task["name"], tags)
        include = task.get("ansible.builtin.include_tasks")
        if include is not None:
            assert set(include["apply"]["tags"]) == tags, (role, task["name"])
        else:
            assert "ansible.builtin.import_tasks" in task, (role, task["name"])


def test_site_yml_wiring() -> None:
    """site.yml: the checks before any change, the key manager, the one server play whose roles
    share handlers (ftps_pki's and ftps_users' notifications reach ftps_server's), the clients."""
    plays = yaml.safe_load((ROOT / "playbooks" / "site.yml").read_text())
    imports = [
        (play["hosts"], task["ansible.builtin.import_role"])
        for play in plays
        for task in play.get("tasks", [])
    ]
    entry = [(hosts, role["name"], role["tasks_from"]) for hosts, role in imports]
    assert entry == [
        ("ftps_servers", "ftpskit.ftps.ftps_fleet", "preflight"),
        ("ftps_ca", "ftpskit.ftps.ftps_pki", "key_manager.yml"),
        ("ftps_clients", "ftpskit.ftps.ftps_fleet", "clients"),
    ]
    assert plays[1]["tags"] == ["ftps_pki"]
    (server,) = [play for play in plays if "roles" in play]
    assert plays.index(server) == 2 and server["hosts"] == "ftps_servers"
    assert [role["role"] for role in server["roles"]] == [
        f"ftpskit.ftps.{name}" for name in ("ftps_pki", "ftps_server", "ftps_users", "ftps_firewall")
    ]
    # the firewall programs the rules the first play checked, ftps_server's among them (ftps_fleet's
    # preflight_firewall, test_firewall_rules_are_handed_over_in_one_place): no wiring of its own here
    assert server["roles"][3] == {"role": "ftpskit.ftps.ftps_firewall"}
    # the client play: ftps_client and the proof under their tags, in the entry point
    clients = yaml.safe_load((FLEET_ROLE / "tasks" / "clients.yml").read_text())
    tagged = {
        (t.get("ansible.builtin.import_role") or {}).get("name")
        or t.get("ansible.builtin.import_tasks"): t.get("tags")
        for t in clients
    }
    assert tagged["ftpskit.ftps.ftps_client"] == ["ftps_client"]
    assert tagged["prove.yml"] == ["probe"]


# ---- one owner per fact: ftps_server's ports reach ftps_firewall in one place ----
WIRING_FILES = sorted([*(ROOT / "playbooks").rglob("*.yml"), *(ROOT / "roles").rglob("*.yml")])


READS_SERVER_RULES = re.compile(r"\{\{.*\bftps_server_firewall_rules\b", re.S)


def _templates(node: object) -> list[str]:
    if isinstance(node, dict):
        return [text for value in node.values() for text in _templates(value)]
    if isinstance(node, list):
        return [text for item in node for text in _templates(item)]
    return [node] if isinstance(node, str) else []


def _handovers(node: object, where: str) -> list[str]:
    """Every ``ftps_firewall_dependent_rules`` given a value whose template reads
    ``ftps_server_firewall_rules`` (vars of a task, a role entry, a play or a block, a set_fact; block
    or flow style; an argument spec's description, no template, is not one)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "ftps_firewall_dependent_rules" and any(
                map(READS_SERVER_RULES.search, _templates(value))
            ):
                found.append(where)
            found += _handovers(value, where)
    elif isinstance(node, list):
        for item in node:
            found += _handovers(item, where)
    return found


def test_firewall_rules_are_handed_over_in_one_place() -> None:
    """ftps_server's exported ports become ftps_firewall's dependent rules in exactly one place,
    ftps_fleet's entry point preflight_firewall, which site.yml, firewall.yml and preflight.yml run
    (the role READMEs' examples, for plays of one's own, are not the kit's wiring). On the old
    code four places wired it: site.yml, firewall.yml, ftps_fleet's preflight and preflight_vars."""
    places = [
        place
        for path in WIRING_FILES
        for place in _handovers(yaml.safe_load(path.read_text()), str(path.relative_to(ROOT)))
    ]
    assert places == ["roles/ftps_fleet/tasks/preflight_firewall.yml"], places
    imports = {
        name: (ROOT / path).read_text().count("preflight_firewall")
        for name, path in {
            "site.yml (its first play)": "roles/ftps_fleet/tasks/preflight.yml",
            "preflight.yml": "roles/ftps_fleet/tasks/preflight_vars.yml",
            "firewall.yml": "playbooks/firewall.yml",
        }.items()
    }
    assert all(count >= 1 for count in imports.values()), imports


def _readers_of_the_layout() -> set[str]:
    """The roles other than ftps_pki whose defaults, vars, tasks or templates read ftps_pki_layout."""
    readers = set()
    for role in ROLES:
        if role.name == "ftps_pki":
            continue
        for path in [*role.glob("*/*.yml"), *role.glob("templates/*")]:
            lines = path.read_text().splitlines()
            text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
            if re.search(r"ftps_pki_layout\.[a-z_]+", text):
                readers.add(role.name)
    return readers


def test_daemon_group_has_one_name() -> None:
    # one variable names the daemon's group: ftps_pki's; the others read ftps_pki_layout.group
    groups = sorted(name for values in DEFAULTS.values() for name in values if name.endswith("_group"))
    assert groups == ["ftps_pki_group"]
    for role, internals in {
        "ftps_server": {"__ftps_server_group": "ftps_server_group"},
        "ftps_users": {
            "__ftps_users_home_group": "ftps_users_home_group",
            "__ftps_users_file_group": "ftps_users_file_group",
        },
    }.items():
        values = yaml.safe_load((ROOT / "roles" / role / "vars" / "main.yml").read_text())
        for internal, alias in internals.items():
            # the deprecated name wins when an inventory still sets it, else the published group
            assert values[internal] == f"{{{{ {alias} | default(ftps_pki_layout.group) }}}}"
            # nothing else reads the alias: tasks and templates use the resolved name
            readers = _grep(rf"\b{alias}\b", f"roles/{role}/tasks/*.yml", f"roles/{role}/templates/*")
            assert set(readers) == {f"roles/{role}/tasks/preflight.yml"}, readers
    # the playbooks never name the deprecated aliases (they read ftps_pki_layout.group)
    assert _grep(r"ftps_server_group|ftps_users_(home|file)_group", "playbooks/**/*.yml") == []
    # no task or template gives a file to a group literal other than root
    literal = _grep(r"\bgroup: (?!root\b)[a-z]|Group=[a-z]", "roles/**/tasks/*.yml", "roles/**/templates/*")
    assert literal == [], literal


def test_tls_paths_default_from_the_layout() -> None:
    # null = ftps_pki's; resolved in vars/ (the argument specs are checked before the role's
    # first task can read the layout), a path set in the inventory wins
    internals = yaml.safe_load((ROOT / "roles/ftps_server/vars/main.yml").read_text())
    for part in ("cert", "key", "chain"):
        name = f"ftps_server_tls_{part}file"
        assert DEFAULTS["ftps_server"][name] is None
        assert internals[f"__{name}"] == f"{{{{ ftps_pki_layout.{part} if {name} is none else {name} }}}}"
        # (a quoted name is a label in a message)
        readers = _grep(rf"(?<!')\b{name}\b", "roles/ftps_server/tasks/*", "roles/ftps_server/templates/*")
        assert readers == [], f"read __{name}, the resolved path: {readers}"


def _written_only_in(pattern: str, files: list[str]) -> None:
    """``pattern`` stands only in ``files`` of the code, the roles' YAML and templates and the
    inventories, and in no README's own words."""
    globs = (*CODE, "roles/**/*.y*ml", "roles/**/*.j2", "inventories/**/*.y*ml")
    hits = sorted(set(_grep(pattern, *globs)))
    assert hits == files, hits
    assert _readmes_writing(pattern) == []


def _role_default_is_the_lookups(role: str, name: str, setting: str, value: object) -> None:
    """The role's default (and its spec mirror) is ``lookup('ftpskit.ftps.ftpsd_default', setting)``,
    which returns ``value``."""
    from ansible_collections.ftpskit.ftps.plugins.lookup.ftpsd_default import LookupModule

    assert DEFAULTS[role][name] == _ftpsd_default(setting)
    assert _spec_default(role, name) == _ftpsd_default(setting)
    assert LookupModule().run([setting]) == [value]


def test_pki_location_one_definition() -> None:
    """The PKI's location is written once in code, ftpskit_common.layout.PKI_DIR: ftpsd's TLS
    defaults, the store modules' pki_dir default (STORE_ARGUMENT_SPEC) and ftps_pki's default
    (through the lookup) read it; the modules' documentation is the generations doc fragment
    (test_doc_fragments.py keeps it equal to STORE_ARGUMENT_SPEC)."""
    from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.store import STORE_ARGUMENT_SPEC

    _written_only_in(
        r"/etc/ftps-kit/pki\b",
        ["plugins/doc_fragments/generations.py", "plugins/module_utils/ftpskit_common/layout.py"],
    )
    _role_default_is_the_lookups("ftps_pki", "ftps_pki_dir", "pki_dir", layout.PKI_DIR)
    assert STORE_ARGUMENT_SPEC["pki_dir"]["default"] == layout.PKI_DIR
    for part in ("cert", "key", "chain"):
        assert getattr(TLSConfig, f"{part}file") == layout.current_path(f"{part}.pem")
    # the files of the served generation are named by ftps_pki alone; the others read ftps_pki_layout
    named = _grep(r"/current/(cert|key|chain)\.pem", "roles/**/*.yml", "roles/**/*.j2")
    assert [hit for hit in named if not hit.startswith("roles/ftps_pki/")] == [], named


def test_users_file_one_definition() -> None:
    """ftpsd's users file path is written once in code, ftpskit_common.passwd.USERS_FILE: ftpsd's
    ``users.file`` default, the ftps_users module's ``path`` default and ftps_server's
    ``ftps_server_users_file`` (through the lookup, and its spec mirror) read it. The one documented
    exception: the module's DOCUMENTATION states the default (validate-modules compares it with the
    argument spec), kept equal here."""
    from ftpsd.config import UsersConfig

    _written_only_in(
        r"/etc/ftpsd/users\.json",
        ["plugins/module_utils/ftpskit_common/passwd.py", "plugins/modules/ftps_users.py"],
    )
    assert _grep(r"^USERS_FILE = ", *CODE) == ["plugins/module_utils/ftpskit_common/passwd.py"]
    assert _grep(r"/etc/ftpsd/users\.json", "plugins/modules/ftps_users.py") == [
        "plugins/modules/ftps_users.py"
    ]
    doc = yaml.safe_load(
        importlib.import_module("ansible_collections.ftpskit.ftps.plugins.modules.ftps_users").DOCUMENTATION
    )
    assert doc["options"]["path"]["default"] == USERS_FILE
    assert UsersConfig.file == USERS_FILE
    _role_default_is_the_lookups("ftps_server", "ftps_server_users_file", "users_file", USERS_FILE)


def test_layout_readers_publish_it_first() -> None:
    """A role reading ftps_pki_layout runs ftps_pki's ``layout`` entry point when it is missing,
    first in its table of contents (any tag) and first in its preflight (site.yml, users.yml and
    firewall.yml call the preflight alone), and never restates a fallback."""
    readers = _readers_of_the_layout()
    assert readers == {"ftps_server", "ftps_users", "ftps_fleet"}
    # ftps_fleet's workflows publish it in the first entry point each of their plays runs on the
    # servers (rotate.yml: select; ca_rollover.yml: rollover_begin; report.yml: report_read); the
    # later entry points (rotate, rollback, rollover_finish) run on those hosts after it.
    for entry in ("select.yml", "rollover_begin.yml", "report_read.yml"):
        tasks = yaml.safe_load((FLEET_ROLE / "tasks" / entry).read_text())
        includes = [
            t.get("ansible.builtin.include_role") or t.get("ansible.builtin.import_role") for t in tasks
        ]
        assert {"name": "ftpskit.ftps.ftps_pki", "tasks_from": "layout.yml"} in [
            {k: v for k, v in (i or {}).items() if k in ("name", "tasks_from")} for i in includes
        ], entry
    for name in sorted(readers - {"ftps_fleet"}):
        tasks = yaml.safe_load((ROOT / "roles" / name / "tasks" / "pki_layout.yml").read_text())
        (include,) = tasks
        assert include["ansible.builtin.include_role"]["name"] == "ftpskit.ftps.ftps_pki"
        assert include["ansible.builtin.include_role"]["tasks_from"] == "layout"
        assert include["when"] == "ftps_pki_layout is not defined"
        for entry in ("main.yml", "preflight.yml"):
            first = yaml.safe_load((ROOT / "roles" / name / "tasks" / entry).read_text())[0]
            assert first["ansible.builtin.include_tasks"]["file"] == "pki_layout.yml", (name, entry)
    assert _grep(r"ftps_pki_layout\.[a-z_]+ *\| *default\(", "roles/**/*.yml", "roles/**/*.j2") == []


# ---- the daemon's user, its users file, its data root: ftps_server's, read by ftps_users ----
# ftps_users' internal name -> (its deprecated alias, the key of ftps_server_layout, ftps_server's variable)
SERVER_FACTS = {
    "__ftps_users_home_owner": ("ftps_users_home_owner", "user", "ftps_server_user"),
    "__ftps_users_file": ("ftps_users_file", "users_file", "ftps_server_users_file"),
    "__ftps_users_home_root": ("ftps_users_home_root", "data_dir", "ftps_server_data_dir"),
}


def test_daemon_user_users_file_and_data_root_have_one_name() -> None:
    # ftps_server publishes them from its own variables, checked where they are published
    tasks = yaml.safe_load((ROOT / "roles/ftps_server/tasks/layout.yml").read_text())
    (published,) = [
        t["ansible.builtin.set_fact"]["ftps_server_layout"] for t in tasks if "ansible.builtin.set_fact" in t
    ]
    assert published == {key: f"{{{{ {owner} }}}}" for _, key, owner in SERVER_FACTS.values()}
    (check,) = [t for t in tasks if "ansible.builtin.assert" in t]
    assert all(owner in yaml.safe_dump(check) for *_, owner in SERVER_FACTS.values())
    # ... and nowhere else: one validator of the paths
    for _, key, owner in SERVER_FACTS.values():
        if key != "user":
            assert _grep(rf"{owner} is match", "roles/**/*.yml") == ["roles/ftps_server/tasks/layout.yml"]
    # ftps_server's preflight runs it (site.yml, users.yml); it is an entry point of its own
    first = yaml.safe_load((ROOT / "roles/ftps_server/tasks/preflight.yml").read_text())
    assert {"file": "layout.yml"} in [t.get("ansible.builtin.include_tasks") for t in first]
    specs = yaml.safe_load((ROOT / "roles/ftps_server/meta/argument_specs.yml").read_text())
    assert specs["argument_specs"]["layout"] == specs["argument_specs"]["main"]
    # ftps_users has no default of its own for them; the deprecated name wins when set
    internals = yaml.safe_load((ROOT / "roles/ftps_users/vars/main.yml").read_text())
    for internal, (alias, key, _) in SERVER_FACTS.items():
        assert alias not in DEFAULTS["ftps_users"]
        assert internals[internal] == f"{{{{ {alias} | default(ftps_server_layout.{key}) }}}}"
        # (a tag of the same name is not a read)
        readers = _grep(
            rf"^(?!\s*tags:).*\b{alias}\b", "roles/ftps_users/tasks/*.yml", "roles/ftps_users/templates/*"
        )
        assert set(readers) <= {"roles/ftps_users/tasks/preflight.yml"}, readers
        assert _grep(rf"\b{alias}\b", "playbooks/**/*.yml", "roles/ftps_fleet/**/*.yml") == []
    # ftps_users runs ftps_server's `layout` entry point when ftps_server is not in the run, first
    # after ftps_pki's in its table of contents and its preflight, and never restates a fallback
    (include,) = yaml.safe_load((ROOT / "roles/ftps_users/tasks/server_layout.yml").read_text())
    assert include["ansible.builtin.include_role"]["name"] == "ftpskit.ftps.ftps_server"
    assert include["ansible.builtin.include_role"]["tasks_from"] == "layout"
    assert include["when"] == "ftps_server_layout is not defined"
    for entry in ("main.yml", "preflight.yml"):
        second = yaml.safe_load((ROOT / "roles/ftps_users/tasks" / entry).read_text())[1]
        assert second["ansible.builtin.include_tasks"]["file"] == "server_layout.yml", entry
    assert _grep(r"ftps_server_layout\.[a-z_]+ *\| *default\(", "roles/**/*.yml", "roles/**/*.j2") == []


# ---- ftpsd's listeners and the client CA files: read from their owners, never spelled again ----
# ftps_server publishes where ftpsd listens (ftps_server_listening); ftps_pki where a server keeps
# the client CA certificate and CRL (ftps_pki_layout.client_ca_file, .client_crl_file).
OWNED_ELSEWHERE = re.compile(
    r"\bftps_server_(control_port|implicit_port|listen)\b|/client/c(a|rl)\.pem|default\((21|990)\)"
)


def test_the_fleet_reads_ports_and_client_ca_paths_from_their_owners() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in PLAYBOOK_FILES
        if "meta" not in path.parts and "defaults" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if OWNED_ELSEWHERE.search(line)
    ]
    assert found == [], found
    # nor any other role's tasks or templates (ftps_pki's layout defines the client CA paths, below):
    # ftps_server's ports are read from what it publishes
    # (ftps_server_listening), never restated (e.g. ftps_client's pin file, a `default(21)`)
    others = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / "roles").glob("*/*/*"))
        if path.parts[-3] not in ("ftps_server", "ftps_pki")
        and path.parts[-2] in ("tasks", "templates", "handlers", "vars")
        and path.is_file()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if OWNED_ELSEWHERE.search(line)
    ]
    assert others == [], others
    # the client CA paths: ftps_pki's layout is their one definition in the roles' code
    assert sorted(set(_grep(r"^\s*[^#\s].*/client/c(a|rl)\.pem", "roles/**/*.yml", "roles/**/*.j2"))) == [
        "roles/ftps_pki/tasks/layout.yml"
    ]


def test_listening_readers_publish_it_first() -> None:
    """ftps_server_listening is ftps_server's (its preflight, or its entry point ``listening``
    alone). The fleet entry points that read it on a server run ``listening`` first when it is
    missing; report.yml's and revoke.yml's server plays run it for their later plays' probes;
    site.yml's proof reads what its first play's preflight published."""
    tasks = yaml.safe_load((ROOT / "roles/ftps_server/tasks/preflight.yml").read_text())
    assert {
        "name": "Publish the checked addresses and ports",
        "ansible.builtin.import_tasks": "listening.yml",
    } in tasks
    (publish,) = yaml.safe_load((ROOT / "roles/ftps_server/tasks/listening.yml").read_text())
    assert set(publish["ansible.builtin.set_fact"]["ftps_server_listening"]) == {
        "listen",
        "control_port",
        "implicit_port",
        "passive_ports",
    }
    specs = yaml.safe_load((ROOT / "roles/ftps_server/meta/argument_specs.yml").read_text())["argument_specs"]
    assert specs["listening"] == specs["main"]
    listening = {"name": "ftpskit.ftps.ftps_server", "tasks_from": "listening"}

    def includes(entry: str) -> list[dict]:
        found = []

        def walk(items: list) -> None:
            for task in items or []:
                include = task.get("ansible.builtin.include_role") or {}
                found.append(
                    {k: v for k, v in include.items() if k in ("name", "tasks_from")}
                    | ({"when": task["when"]} if "when" in task else {})
                )
                walk(task.get("block"))

        walk(yaml.safe_load((FLEET_ROLE / "tasks" / entry).read_text()))
        return found

    # select.yml publishes it for the clients' pins (publish_pins.yml, before any server switches)
    for entry in ("gate.yml", "rollback.yml", "select.yml"):
        assert listening | {"when": "ftps_server_listening is not defined"} in includes(entry), entry
    for entry in ("report_read.yml", "revoke.yml"):
        assert listening in includes(entry), entry
    # every reader (a task's name only names it)
    readers = {
        str(path.relative_to(FLEET_ROLE))
        for path in FLEET_ROLE.rglob("*.yml")
        if any(
            "ftps_server_listening" in line and not line.lstrip().startswith(("- name:", "#"))
            for line in path.read_text().splitlines()
        )
    }
    assert readers == {
        "tasks/gate.yml",
        "tasks/rollback.yml",
        "tasks/select.yml",
        "tasks/prove.yml",
        "tasks/report_probe.yml",
        "tasks/revoke_prove.yml",
        "vars/main.yml",
    }, readers
