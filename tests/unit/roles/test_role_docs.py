"""Every role README lists every variable, and the role's two lists of variables agree.

`meta/argument_specs.yml` is the one source: its options are what Ansible checks at run time,
lab/role_docs.py writes the README table from them, and `defaults/main.yml` must hold exactly
the same variables with the same defaults (the specs say "mirrors defaults/main.yml").
"""

from __future__ import annotations

import importlib.util
import json
import pathlib

import pytest
import yaml

from tests.paths import ROOT

ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file())
_spec = importlib.util.spec_from_file_location("role_docs", ROOT / "lab" / "role_docs.py")
role_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(role_docs)


def test_every_role_has_argument_specs() -> None:
    assert {p.name for p in ROLES} == {p.name for p in (ROOT / "roles").iterdir() if p.is_dir()}


@pytest.mark.parametrize("role", ROLES, ids=[p.name for p in ROLES])
def test_readme_table_is_generated_from_the_specs(role: pathlib.Path) -> None:
    readme = (role / "README.md").read_text()
    assert role_docs.render(readme, role) == readme, f"{role.name}/README.md is out of date: run make docs"
    for name in role_docs.specs(role)["options"]:
        assert f"| `{name}` |" in readme, name


# Role variables without the role's prefix, each with its reason.
UNPREFIXED = {
    # site.yml's probe account (entry point prove), older than the role and set in the client
    # inventories (inventories/*, the Molecule scenarios, the EE jobs): declared with its default
    # instead of a `| default('')` in the task; a rename would be a deprecation of its own
    "ftps_fleet": ("ftps_site_probe_user", "ftps_site_probe_password"),
}


def _is_template(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


@pytest.mark.parametrize("role", ROLES, ids=[p.name for p in ROLES])
def test_defaults_and_specs_agree(role: pathlib.Path) -> None:
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    options = role_docs.specs(role)["options"]
    assert set(defaults) == set(options), (
        f"only in defaults: {sorted(set(defaults) - set(options))}; "
        f"only in argument_specs: {sorted(set(options) - set(defaults))}"
    )
    for name, spec in options.items():
        if "default" not in spec and _is_template(defaults.get(name)):
            # A templated default cannot be a spec default (antsibull-docs validates a default
            # against the type); the description must name it instead.
            desc = spec.get("description", "")
            desc = " ".join(desc) if isinstance(desc, list) else str(desc)
            assert f"Default: C({defaults[name]})" in desc, f"{name}: the description names the default"
            continue
        assert "default" in spec or spec.get("required"), f"{name}: no default in argument_specs"
        if "default" in spec:
            assert spec["default"] == defaults[name], f"{name}: {spec['default']!r} != {defaults[name]!r}"
    for name in defaults:
        assert name.startswith(f"{role.name}_") or name in UNPREFIXED.get(role.name, ()), (
            f"{name}: a role variable carries the role's prefix"
        )


@pytest.mark.parametrize(
    ("role", "name", "setting"),
    [
        ("ftps_pki", "ftps_pki_dir", "pki_dir"),
        ("ftps_pki", "ftps_pki_renew_before_days", "renew_before_days"),
        ("ftps_server", "ftps_server_passive_ports", "passive_ports"),
        ("ftps_server", "ftps_server_users_file", "users_file"),
    ],
)
def test_an_ftpsd_default_is_shown_as_its_value(role: str, name: str, setting: str) -> None:
    """A default read through the ftpsd_default lookup (in the spec, or in defaults/main.yml for a
    typed option) shows in the README table as the value the lookup returns, saying so; never as
    the lookup expression alone."""
    from ansible_collections.ftpskit.ftps.plugins.lookup.ftpsd_default import LookupModule

    (value,) = LookupModule().run([setting])
    shown = value if isinstance(value, str) else json.dumps(value)
    readme = (ROOT / "roles" / role / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.startswith(f"| `{name}` |")]
    default = row.split(" | ")[2]
    assert default == f"`{shown}` (ftpsd's own: the `ftpsd_default` lookup's `{setting}`)", row
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    assert defaults[name] == f"{{{{ lookup('ftpskit.ftps.ftpsd_default', '{setting}') }}}}"


def test_markup_with_parentheses_inside_renders_whole() -> None:
    assert (
        role_docs._inline("Default: C({{ lookup('a', 'b') }}) (x)") == "Default: `{{ lookup('a', 'b') }}` (x)"
    )
