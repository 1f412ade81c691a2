"""The modules' shared documentation has one home, plugins/doc_fragments/ (community.crypto
style): each module extends the fragments and keeps only what is its own. Rendered the way
ansible-doc renders it (ansible's own add_fragments), every module still documents its check
and diff mode completely."""

from __future__ import annotations

import ast
import copy
import pathlib
import runpy

import pytest
import yaml
from ansible.plugins.loader import fragment_loader
from ansible.utils.plugin_docs import add_fragments

from tests.paths import ROOT

MODULES = sorted((ROOT / "plugins" / "modules").glob("*.py"))
FRAGMENTS = ROOT / "plugins" / "doc_fragments"
PREFIX = "ftpskit.ftps."
ATTRIBUTES = {f"{PREFIX}attributes", f"{PREFIX}attributes.no_diff"}


def module_doc(path: pathlib.Path) -> dict:
    """The module's own DOCUMENTATION, read without importing it."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == [
            "DOCUMENTATION"
        ]:
            return yaml.safe_load(node.value.value)
    raise AssertionError(f"{path.name}: no DOCUMENTATION")


def fragment(name: str) -> dict:
    """The YAML of ``ftpskit.ftps.<file>[.<variable>]``."""
    file, _, var = name.removeprefix(PREFIX).partition(".")
    cls = runpy.run_path(str(FRAGMENTS / f"{file}.py"))["ModuleDocFragment"]
    return yaml.safe_load(getattr(cls, (var or "documentation").upper()))


class Loader:
    """ansible's fragment loader for ansible.builtin.*, this checkout for ftpskit.ftps.*."""

    def get(self, name: str) -> type | None:
        if not name.startswith(PREFIX):
            # Without a collection finder the loader knows ansible-core's own by short name.
            return fragment_loader.get(name.removeprefix("ansible.builtin."))
        path = FRAGMENTS / f"{name.removeprefix(PREFIX)}.py"
        if not path.is_file():
            return None
        cls = runpy.run_path(str(path))["ModuleDocFragment"]
        cls.ansible_name = name
        return cls


def rendered(path: pathlib.Path) -> dict:
    doc = copy.deepcopy(module_doc(path))
    add_fragments(doc, str(path), Loader(), is_module=True)
    return doc


def own_fragments(doc: dict) -> list[str]:
    return [f for f in doc.get("extends_documentation_fragment", []) if f.startswith(PREFIX)]


def test_every_fragment_is_used() -> None:
    used = {f for path in MODULES for f in own_fragments(module_doc(path))}
    files = {f"{PREFIX}{p.stem}" for p in FRAGMENTS.glob("*.py")}
    assert {u.split(".")[2] for u in used} == {f.split(".")[2] for f in files}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_check_and_diff_mode_come_from_the_attributes_fragment(path: pathlib.Path) -> None:
    """Full check-mode support is stated by the fragment; a module without it (a report's
    output written in check mode too) states its own support and extends none."""
    own = module_doc(path)
    extends = len(ATTRIBUTES & set(own_fragments(own)))
    if own.get("attributes", {}).get("check_mode", {}).get("support") not in (None, "full"):
        assert extends == 0
    else:
        assert extends == 1, "extend exactly one attributes fragment"
        for name, attribute in own.get("attributes", {}).items():
            assert "support" not in attribute, f"attributes.{name}.support is the fragment's"
    attributes = rendered(path)["attributes"]
    assert set(attributes) == {"check_mode", "diff_mode"}
    for attribute in attributes.values():
        assert attribute["support"] in {"full", "partial", "none"}
    for attribute in attributes.values():
        assert attribute["description"].strip(), "each module says what its check mode does"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_no_module_restates_a_fragment(path: pathlib.Path) -> None:
    """An option a fragment documents is only refined (its description) by a module that extends
    the fragment, and no module documents the same option (name, type, default, choices) on its
    own (``path`` is such an option only where it names the same directory); a requirement a
    fragment states is not written again."""
    own = module_doc(path)
    extended = own_fragments(own)
    for name in sorted(f"{PREFIX}{p.stem}" for p in FRAGMENTS.glob("*.py")):
        for option, spec in fragment(name).get("options", {}).items():
            mine = own.get("options", {}).get(option)
            if mine is None:
                continue
            if name in extended:
                assert set(mine) == {"description"}, f"{option}: only its description may differ"
            else:
                # ``path`` is each module's own directory (a CA, a client's key): the same
                # option only where it names the same directory.
                keys = ("type", "default", "choices") + (("description",) if option == "path" else ())
                same = {k: mine.get(k) for k in keys}
                assert same != {k: spec.get(k) for k in keys}, f"{option} is documented by {name}: extend it"
    stated = {r for name in extended for r in fragment(name).get("requirements", [])}
    assert not stated & set(own.get("requirements", []))


def test_the_rendered_options_keep_their_types_and_defaults() -> None:
    """What the fragments add: the generations and CA options, whole, in the modules that use them."""
    for module in ("ftps_pki_generation", "ftps_pki_install", "ftps_pki_request"):
        options = rendered(ROOT / "plugins" / "modules" / f"{module}.py")["options"]
        assert options["pki_dir"] == fragment(f"{PREFIX}generations")["options"]["pki_dir"]
        assert options["group"]["type"] == "str" and options["group"]["default"] == "ftpsd"
    for module in ("ftps_pki_ca", "ftps_pki_ca_rollover"):
        options = rendered(ROOT / "plugins" / "modules" / f"{module}.py")["options"]
        assert options["key_type"]["choices"] == ["ecdsa-p384", "ecdsa-p256", "rsa-4096", "rsa-3072"]
        assert options["key_type"]["default"] == "ecdsa-p384"
        assert (options["validity_days"]["type"], options["validity_days"]["default"]) == ("int", 3650)


def test_the_fragments_document_the_argument_specs_they_stand_for() -> None:
    """The generations fragment documents the options the store modules take from
    STORE_ARGUMENT_SPEC, the CA fragment the key types CA_KEY_TYPES: one spec, one documentation."""
    from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import CA_KEY_TYPES
    from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.store import STORE_ARGUMENT_SPEC

    documented = fragment(f"{PREFIX}generations")["options"]
    assert set(documented) == set(STORE_ARGUMENT_SPEC)
    for name, spec in STORE_ARGUMENT_SPEC.items():
        assert (documented[name]["type"], documented[name]["default"]) == (spec["type"], spec["default"])
    assert fragment(f"{PREFIX}ca")["options"]["key_type"]["choices"] == list(CA_KEY_TYPES)


def assert_documents(name: str, specs: dict) -> None:
    """The fragment ``name`` documents exactly the options of ``specs``, each with its type,
    default, required and choices."""
    documented = fragment(f"{PREFIX}{name}")["options"]
    assert set(documented) == set(specs)
    keys = ("type", "default", "required", "choices")
    for option, spec in specs.items():
        assert {k: documented[option].get(k) for k in keys} == {k: spec.get(k) for k in keys}, option


def test_the_key_fragments_document_the_argument_specs_they_stand_for() -> None:
    """ca_key documents CA_KEY_ARGUMENT_SPEC (the CA key's passphrase, no_log), host_key
    KEY_TYPE_ARGUMENT_SPEC (a host key's type), and every module taking those options extends them."""
    from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.ca import CA_KEY_ARGUMENT_SPEC
    from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import (
        KEY_TYPE_ARGUMENT_SPEC,
        KEY_TYPES,
    )

    for name, specs in (("ca_key", CA_KEY_ARGUMENT_SPEC), ("host_key", KEY_TYPE_ARGUMENT_SPEC)):
        assert_documents(name, specs)
    assert CA_KEY_ARGUMENT_SPEC["passphrase"]["no_log"] is True
    assert KEY_TYPE_ARGUMENT_SPEC["key_type"]["choices"] == list(KEY_TYPES)
    extending = {
        path.stem: own_fragments(module_doc(path))
        for path in MODULES
        if "ca_key" in str(own_fragments(module_doc(path)))
        or "host_key" in str(own_fragments(module_doc(path)))
    }
    assert extending == {
        "ftps_pki_ca": [f"{PREFIX}ca", f"{PREFIX}attributes", f"{PREFIX}cryptography", f"{PREFIX}ca_key"],
        "ftps_pki_ca_rollover": [
            f"{PREFIX}ca",
            f"{PREFIX}attributes.no_diff",
            f"{PREFIX}cryptography",
            f"{PREFIX}ca_key",
        ],
        "ftps_pki_client_cert": [
            f"{PREFIX}attributes.no_diff",
            f"{PREFIX}cryptography.managed_host",
            f"{PREFIX}host_key",
        ],
        "ftps_pki_client_crl": [
            f"{PREFIX}client_ca",
            f"{PREFIX}attributes.no_diff",
            f"{PREFIX}cryptography",
            f"{PREFIX}ca_key",
        ],
        "ftps_pki_client_sign": [
            f"{PREFIX}client_ca",
            f"{PREFIX}attributes.no_diff",
            f"{PREFIX}cryptography",
            f"{PREFIX}ca_key",
        ],
        "ftps_pki_request": [
            f"{PREFIX}generations",
            f"{PREFIX}attributes",
            f"{PREFIX}cryptography.managed_host",
            f"{PREFIX}host_key",
        ],
        "ftps_pki_sign": [f"{PREFIX}attributes", f"{PREFIX}cryptography", f"{PREFIX}ca_key"],
    }


def test_the_client_ca_fragment_documents_the_argument_spec_it_stands_for() -> None:
    """client_ca documents CLIENT_CA_ARGUMENT_SPEC (the client CA's directory), and exactly the
    modules whose argument spec takes it extend it."""
    from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.client import CLIENT_CA_ARGUMENT_SPEC

    assert_documents("client_ca", CLIENT_CA_ARGUMENT_SPEC)
    using = {path.stem for path in MODULES if "CLIENT_CA_ARGUMENT_SPEC" in path.read_text()}
    extending = {path.stem for path in MODULES if f"{PREFIX}client_ca" in own_fragments(module_doc(path))}
    assert using == extending == {"ftps_pki_client_crl", "ftps_pki_client_report", "ftps_pki_client_sign"}


def test_the_ca_key_fragment_says_where_its_modules_run() -> None:
    """Every module that opens a CA key runs on the host of the kit's store: the ca_key fragment
    says so once (a note), and ansible-doc shows it for each of them."""
    note = fragment(f"{PREFIX}ca_key")["notes"]
    assert len(note) == 1 and "host of the kit's store" in note[0]
    for path in MODULES:
        if f"{PREFIX}ca_key" in own_fragments(module_doc(path)):
            assert rendered(path)["notes"] == note, path.stem


def own_paragraphs(doc: dict) -> list[str]:
    """Every paragraph a module writes itself: its description and notes, and each option's
    (and suboption's) description."""
    out = list(doc.get("description", [])) + list(doc.get("notes", []))
    stack = list(doc.get("options", {}).values())
    while stack:
        spec = stack.pop()
        text = spec.get("description", [])
        out += [text] if isinstance(text, str) else list(text)
        stack += list(spec.get("suboptions", {}).values())
    return [" ".join(p.split()) for p in out]


def test_no_two_modules_write_the_same_documentation() -> None:
    """Documentation two modules share lives in a fragment: no paragraph of one module's own
    DOCUMENTATION (description, notes, an option's description) stands word for word in another's,
    and no option is documented whole (name, description, type, default, required) by two modules."""
    seen_text: dict[str, str] = {}
    seen_option: dict[str, str] = {}
    repeats = []
    for path in MODULES:
        own = module_doc(path)
        for text in set(own_paragraphs(own)):
            if len(text) >= 40 and seen_text.setdefault(text, path.stem) != path.stem:
                repeats.append(f"{seen_text[text]} and {path.stem}: {text!r}")
        for name, spec in own.get("options", {}).items():
            key = repr((name, sorted((k, repr(v)) for k, v in spec.items())))
            if seen_option.setdefault(key, path.stem) != path.stem:
                repeats.append(f"{seen_option[key]} and {path.stem}: option {name}")
    assert repeats == []
