"""The checkout is the collection ftpskit.ftps: every module documents itself, and the built
tarball installs into a working collection (real module_utils code, roles, playbooks, ftpsd)."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile

import pytest
import yaml

from tests.paths import ROOT

BIN = pathlib.Path(sys.executable).parent
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py"))
# The shared package: one copy, in the collection, shipped by Ansible's module finder to hosts
# and packed by src/common/pyproject.toml into the ftpskit-common wheel.
SHARED = ROOT / "plugins" / "module_utils" / "ftpskit_common"
SHARED_FILES = sorted(p.name for p in SHARED.glob("*.py"))


def run(argv: list[str], cwd: pathlib.Path, collections: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """Run an ansible command in ``cwd`` (outside the checkout) with an empty ansible.cfg and only
    ``collections`` as collections path: nothing of the project's configuration helps it."""
    config = cwd / "ansible.cfg"
    config.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=str(config))
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_module_is_found() -> None:
    assert MODULES == [
        "ftps_deprecated_vars",
        "ftps_pki_acme",
        "ftps_pki_acme_http01",
        "ftps_pki_ca",
        "ftps_pki_ca_rollover",
        "ftps_pki_client_cert",
        "ftps_pki_client_crl",
        "ftps_pki_client_report",
        "ftps_pki_client_sign",
        "ftps_pki_generation",
        "ftps_pki_identity",
        "ftps_pki_install",
        "ftps_pki_request",
        "ftps_pki_sign",
        "ftps_probe",
        "ftps_report_rows",
        "ftps_users",
    ]


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_from_the_checkout(module: str, tmp_path: pathlib.Path) -> None:
    # tests/conftest.py made the link .cache/collections/ansible_collections/ftpskit/ftps.
    result = run(
        [str(BIN / "ansible-doc"), f"ftpskit.ftps.{module}"], tmp_path, ROOT / ".cache" / "collections"
    )
    assert result.returncode == 0, result.stderr
    assert f"ftpskit.ftps.{module}" in result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, pathlib.Path]:
    """(tarball, installed collection dir) from `ansible-galaxy collection build` + `install`."""
    work = tmp_path_factory.mktemp("collection")
    build = run(
        [str(BIN / "ansible-galaxy"), "collection", "build", str(ROOT), "--output-path", str(work)],
        work,
        work / "none",
    )
    assert build.returncode == 0, build.stderr
    tarball = work / "ftpskit-ftps-0.1.0.tar.gz"
    install = run(
        [str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(work / "coll")],
        work,
        work / "coll",
    )
    assert install.returncode == 0, install.stderr
    return tarball, work / "coll" / "ansible_collections" / "ftpskit" / "ftps"


def test_tarball_holds_the_kit_and_no_data(installed: tuple[pathlib.Path, pathlib.Path]) -> None:
    tarball, _ = installed
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    for module in MODULES:
        assert f"plugins/modules/{module}.py" in names
    # the modules' shared documentation: without it ansible-doc fails on the installed collection
    fragments = {f"plugins/doc_fragments/{p.name}" for p in (ROOT / "plugins" / "doc_fragments").glob("*.py")}
    assert fragments and fragments <= names
    for role in ("ftps_pki", "ftps_server", "ftps_users", "ftps_firewall", "ftps_client"):
        assert f"roles/{role}/tasks/main.yml" in names
    assert {"playbooks/site.yml", "meta/runtime.yml", "LICENSE", "src/pyproject.toml"} <= names
    # rotate.yml with its gate, and the units that run it on a schedule
    assert {
        "playbooks/rotate.yml",
        "roles/ftps_fleet/tasks/gate.yml",
        "contrib/systemd/ftps-kit-rotate",
        "contrib/systemd/ftps-kit-rotate.service",
        "contrib/systemd/ftps-kit-rotate.timer",
    } <= names
    assert "roles/ftps_server/files/build_wheelhouse.py" in names
    assert not [
        n for n in names if n.split("/")[0] in {".cache", ".venv", ".pki", ".ftps-kit", "files", "lab"}
    ]


EE_FILES = ["meta/execution-environment.yml", "meta/ee-requirements.txt", "meta/ee-bindep.txt"]


def requirement_lines(path: pathlib.Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def test_tarball_holds_the_execution_environment_metadata(
    installed: tuple[pathlib.Path, pathlib.Path],
) -> None:
    """ansible-builder reads meta/execution-environment.yml from the installed collection and
    installs the files it names: they must survive galaxy.yml's build_ignore, byte for byte."""
    tarball, coll = installed
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    assert set(EE_FILES) <= names
    for name in EE_FILES:
        assert sha256(coll / name) == sha256(ROOT / name), name
    meta = yaml.safe_load((coll / "meta" / "execution-environment.yml").read_text())
    assert meta["dependencies"] == {"python": "meta/ee-requirements.txt", "system": "meta/ee-bindep.txt"}


def test_ee_requirements_are_the_controller_requirements() -> None:
    """One list of the controller's Python requirements: the EE's is pyproject.toml's runtime
    dependencies without ansible-core (an EE brings its own)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert requirement_lines(ROOT / "meta" / "ee-requirements.txt") == [
        r for r in project if not r.startswith("ansible-core")
    ]


def test_ee_bindep_parses() -> None:
    """Every line is a bindep requirement: a package name and optional [profile] selectors (the
    controller side needs no system package today, so the file may hold only comments)."""
    for line in requirement_lines(ROOT / "meta" / "ee-bindep.txt"):
        assert re.fullmatch(r"[a-z0-9][a-z0-9.+-]*( \[[a-z0-9:!_ -]+\])?", line), line


def test_installed_collection_holds_the_shared_package_as_files(
    installed: tuple[pathlib.Path, pathlib.Path],
) -> None:
    tarball, coll = installed
    with tarfile.open(tarball) as tar:
        links = [m.name for m in tar.getmembers() if m.issym() or m.islnk()]
    assert links == []  # no symlinks left for galaxy or the module finder to follow
    assert SHARED_FILES == [
        "__init__.py",
        "accounts.py",
        "atomicfile.py",
        "certreq.py",
        "client.py",
        "layout.py",
        "passwd.py",
        "ports.py",
        "sans.py",
        "trust.py",
        "x509.py",
    ]
    for name in SHARED_FILES:
        path = coll / "plugins" / "module_utils" / "ftpskit_common" / name
        assert not path.is_symlink(), name
        assert sha256(path) == sha256(SHARED / name), name
    for module in MODULES:
        assert sha256(coll / "plugins" / "modules" / f"{module}.py") == sha256(
            ROOT / "plugins" / "modules" / f"{module}.py"
        )


# A host's Python: Debian's own interpreter when there is one (nothing of the kit importable
# there, so a package the module finder failed to ship cannot be found anywhere else).
HOST_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def run_module(coll: pathlib.Path, cwd: pathlib.Path, module: str, args: dict, *extra: str) -> dict:
    result = run(
        [
            str(BIN / "ansible"),
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={HOST_PYTHON}",
            "-m",
            f"ftpskit.ftps.{module}",
            "-a",
            json.dumps(args),
            "-o",
            *extra,
        ],
        cwd,
        coll.parents[2],
    )
    line = result.stdout.strip().splitlines()[-1]
    return json.loads(line.split(" => ", 1)[1])


def test_installed_modules_run_with_the_shared_package(
    installed: tuple[pathlib.Path, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    """AnsiballZ ships ftpskit_common (a package with relative imports) with the modules that
    import it: ftps_probe (client, x509, atomicfile) and ftps_users (accounts, passwd)."""
    _, coll = installed
    probe = run_module(coll, tmp_path, "ftps_probe", {"host": "127.0.0.1", "port": 1, "timeout": 5})
    assert probe.get("error_kind") == "connect", probe
    users = run_module(
        coll,
        tmp_path,
        "ftps_users",
        {
            "path": str(tmp_path / "users.json"),
            "users": [{"name": "alice", "password": "pw", "home": "/srv/a"}],
        },
        "--check",
    )
    assert users.get("changed") is True and users.get("added") == ["alice"], users
    bad = run_module(
        coll,
        tmp_path,
        "ftps_users",
        {
            "path": str(tmp_path / "users.json"),
            "users": [{"name": "../x", "password": "pw", "home": "/srv/a"}],
        },
        "--check",
    )
    assert "users[0] (name '../x'): 'name' must not contain '/'" in bad.get("msg", ""), bad


def test_installed_pki_modules_run_with_the_pki_package(
    installed: tuple[pathlib.Path, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    """AnsiballZ ships the module_utils package pki (one file per concern, importing each other)
    with the ftps_pki modules: ftps_pki_ca makes a CA (ca, keys, certs, sans, support, rollover,
    ca_guard), ftps_pki_request plans a CSR in check mode (steps, store, renewal)."""
    _, coll = installed
    ca = run_module(coll, tmp_path, "ftps_pki_ca", {"path": str(tmp_path / "ca"), "common_name": "Test CA"})
    assert ca.get("changed") is True and ca.get("subject") == "CN=Test CA", ca
    assert (tmp_path / "ca" / "ca.pem").is_file()
    plan = run_module(
        coll,
        tmp_path,
        "ftps_pki_request",
        {"pki_dir": str(tmp_path / "pki"), "common_name": "ftp1.example.test", "sans": ["ftp1.example.test"]},
        "--check",
    )
    assert plan.get("changed") is True and "failed" not in plan, plan
    assert not (tmp_path / "pki").exists()


def test_wheels_build_from_the_installed_collection(
    installed: tuple[pathlib.Path, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    """ftpsd's wheel holds only the daemon and requires ftpskit-common at the same version; the
    ftpskit-common wheel is the collection's shared package as a top-level package with ftps-trust."""
    _, coll = installed
    out = tmp_path / "wheels"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(out),
            str(coll / "src"),
            str(coll / "src" / "common"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    version = next(
        line.split('"')[1]
        for line in (SHARED / "__init__.py").read_text().splitlines()
        if line.startswith("__version__")
    )
    with zipfile.ZipFile(next(out.glob("ftpskit_common-*.whl"))) as wheel:
        names = wheel.namelist()
        assert sorted(n.split("/")[1] for n in names if n.startswith("ftpskit_common/")) == SHARED_FILES
        entry_points = wheel.read(f"ftpskit_common-{version}.dist-info/entry_points.txt").decode()
        assert "ftps-trust = ftpskit_common.trust:main" in entry_points
    with zipfile.ZipFile(next(out.glob("ftpsd-*.whl"))) as wheel:
        assert not [n for n in wheel.namelist() if n.startswith("ftpskit_common/")]
        metadata = next(wheel.read(n).decode() for n in wheel.namelist() if n.endswith("/METADATA"))
        assert f"Requires-Dist: ftpskit-common=={version}" in metadata
        assert f"Version: {version}" in metadata  # ftpsd and ftpskit-common move together


def test_ansible_doc_from_the_installed_collection(
    installed: tuple[pathlib.Path, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    _, coll = installed
    argv = [str(BIN / "ansible-doc"), *(f"ftpskit.ftps.{m}" for m in MODULES)]
    result = run(argv, tmp_path, coll.parents[2])
    assert result.returncode == 0, result.stderr
    for module in MODULES:
        assert f"ftpskit.ftps.{module}" in result.stdout
    listing = run([str(BIN / "ansible-doc"), "-t", "role", "-l", "ftpskit.ftps"], tmp_path, coll.parents[2])
    assert listing.returncode == 0, listing.stderr
    for role in ("ftps_pki", "ftps_server", "ftps_users", "ftps_firewall", "ftps_client"):
        assert f"ftpskit.ftps.{role}" in listing.stdout


def test_controller_data_never_defaults_inside_the_roles() -> None:
    """Roles are independent of where they are installed: the fleet's state defaults to the kit's
    store (ftps_pki_store_dir, one owner: ftps_pki), the wheelhouse (a build cache) beside the
    inventory; only the collection's own content (ftpsd's source, the roles' files and vars) is
    found relative to role_path. The store's default is written once (defaults + its spec)."""
    allowed = {"ftps_server_source_dir", "src/ftpsd", "build_wheelhouse.py", "/vars"}
    offenders = []
    for path in sorted((ROOT / "roles").glob("*/*/*.yml")):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            context = " ".join(lines[max(0, number - 3) : number])
            if "role_path" in line and not any(a in context for a in allowed):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
    store = "{{ ftps_pki_store_dir }}/"
    cache = "{{ inventory_dir }}/.ftps-kit/wheelhouse"
    for role, names in {
        "ftps_pki": {n: store for n in ("ftps_pki_ca_dir", "ftps_pki_csr_dir", "ftps_pki_external_dir")},
        "ftps_server": {"ftps_server_wheelhouse_dir": cache},
        "ftps_client": {"ftps_client_wheelhouse_dir": cache},
    }.items():
        defaults = (ROOT / "roles" / role / "defaults" / "main.yml").read_text()
        specs = (ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text()
        for name, data in names.items():
            line = next(x for x in defaults.splitlines() if x.strip().startswith(f"{name}:"))
            assert data in line, line
            assert line.split(":", 1)[1].strip() in specs, f"{role}: {name} default differs in argument_specs"
    # the store's own default, in ftps_pki only; nobody restates it
    spelled = [
        str(path.relative_to(ROOT))
        for place in ("roles", "playbooks")
        for path in sorted((ROOT / place).rglob("*.yml"))
        if "'/.ftps-kit'" in path.read_text() or "ftps_kit_data_dir |" in path.read_text()
    ]
    assert spelled == ["roles/ftps_pki/defaults/main.yml", "roles/ftps_pki/meta/argument_specs.yml"]


def _tasks(node: object):
    """Every mapping in a parsed YAML document that looks like a task (blocks walked into)."""
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        yield node
        for value in node.values():
            if isinstance(value, list | dict):
                yield from _tasks(value)


def test_no_set_fact_with_run_once() -> None:
    """A set_fact with run_once (and no delegate_facts) sets the fact on every host and, on
    ansible-core 2.21, makes module facts set later on one host show on every host of the play
    (ansible/ansible#87415: batched rotations recorded each other's certificate). The kit uses a
    registered run_once result or delegate_facts instead; this keeps that class of bug out."""
    import yaml

    offenders = []
    for path in sorted(
        p
        for d in ("playbooks", "roles", "molecule")
        for p in (ROOT / d).rglob("*.yml")
        if "/templates/" not in str(p)
    ):
        for task in _tasks(yaml.safe_load(path.read_text())):
            module = "ansible.builtin.set_fact" in task or "set_fact" in task
            if module and task.get("run_once") is True and task.get("delegate_facts") is not True:
                offenders.append(f"{path.relative_to(ROOT)}: {task.get('name', '?')}")
    assert offenders == []


# Facts as Ansible injects them at the top level (ansible_hostname...): the same fact cache.
_INJECTED_FACTS = re.compile(
    r"\bansible_(default_ipv[46]|fqdn|hostname|nodename|distribution\w*|os_family|python|architecture"
    r"|all_ipv[46]_addresses|env|interfaces|machine_id|lsb)\b"
)


def test_facts_only_from_registered_results() -> None:
    """A host's facts are read only from the registered result of a task that ran on that host
    (``__x.ansible_facts...``), never from ``ansible_facts``, ``hostvars[h].ansible_facts`` or
    injected ``ansible_*`` fact variables: on ansible-core 2.21 a run_once task with register in
    an earlier play makes the hosts share one fact cache entry, so one host's facts show on every
    other (ansible/ansible#87415; issue 20: rotated certificates named another server). Registered
    results and set_fact values are kept per host. tests/unit/playbooks/test_host_identity.py shows it with
    the real ansible-playbook."""
    offenders = []
    for path in sorted(
        p
        for d in ("playbooks", "roles", "molecule")
        for ext in ("*.yml", "*.j2")
        for p in (ROOT / d).rglob(ext)
    ):
        text = re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.S)
        for number, line in enumerate(text.splitlines(), 1):
            code = line.split(" #")[0] if not line.lstrip().startswith("#") else ""
            if code.strip().startswith("filter:"):  # setup's argument naming the facts it reads
                continue
            bare = re.findall(r"(?<![\w.])ansible_facts\b|(?<=[\w\]])\.ansible_facts\b", code)
            registered = re.findall(r"\b__\w+\.ansible_facts\b", code)
            injected = [
                m
                for m in _INJECTED_FACTS.finditer(code)
                if not code[: m.start()].endswith(("ansible_facts.", "os."))
            ]
            if len(bare) > len(registered) or injected:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


# tests/unit mirrors the code tree (docs/design.md, "Layout"); two folders have short names.
TEST_HOMES = {"ftpsd": ROOT / "src" / "ftpsd", "bench": ROOT / "tests" / "bench"}


def test_unit_tests_mirror_the_code_tree() -> None:
    """A unit test lives in tests/unit/<path of the code it tests>/; only this file (the collection
    as a whole) sits at the top. A test dropped flat into tests/unit, or into a folder that names
    no code, fails here and says where it belongs."""
    unit = ROOT / "tests" / "unit"
    misplaced = []
    for path in sorted(unit.rglob("test_*.py")):
        parts = path.relative_to(unit).parent.parts
        if not parts:
            if path.name != "test_collection.py":
                misplaced.append(f"{path.name}: move it to tests/unit/<path of the code it tests>/")
            continue
        home = TEST_HOMES.get(parts[0], ROOT / parts[0]).joinpath(*parts[1:])
        if not home.is_dir():
            misplaced.append(f"{path.relative_to(unit)}: no code at {home.relative_to(ROOT)}")
    assert misplaced == []


# Our own packages, as the code imports them: a private name (`_x`) of one of these is for its
# own module only; what siblings share has a public name in its one home (e.g. pki/support.py).
OWN_PACKAGES = ("ansible_collections.ftpskit.", "ftpsd", "ftpskit_common")


def private_imports(code: str, where: str) -> list[str]:
    """``where:line: name`` for every private name ``code`` imports from another module of ours."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom):
            if not (node.level > 0 or (node.module or "").startswith(OWN_PACKAGES)):
                continue
            names = [a.name for a in node.names] + (node.module or "").split(".")
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names if a.name.startswith(OWN_PACKAGES)]
            names = [part for name in modules for part in name.split(".")]
        else:
            continue
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        found += [f"{where}:{node.lineno}: {name}" for name in private]
    return found


def test_no_module_imports_a_private_name_of_another() -> None:
    """plugins/ and src/ import no `_private` name (nor a `_private` module) of the project's own
    code from another module: a helper two modules share gets a public name in its one home."""
    offenders = [
        hit
        for top in ("plugins", "src")
        for path in sorted((ROOT / top).rglob("*.py"))
        if ".cache" not in path.parts
        for hit in private_imports(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert offenders == []


def test_private_import_check_sees_what_it_forbids() -> None:
    """The check above is not vacuous: each spelling of a private import is reported, a third
    party's private name (pyftpdlib's, which ftpsd cannot avoid) is not."""
    sample = (
        "from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import _x, public\n"
        "from .x509 import _name\n"
        "from ftpsd._internal import thing\n"
        "import ftpskit_common._hidden\n"
        "from pyftpdlib.filesystems import _months_map\n"
        "import os._private_looking\n"
    )
    assert [hit.split(": ")[1] for hit in private_imports(sample, "sample")] == [
        "_x",
        "_name",
        "_internal",
        "_hidden",
    ]


# The repository root has one definition, tests/paths.py; a file that counts parents of its own
# __file__ breaks silently when it moves (and 16 of them once did it each their own way).
_COUNTS_PARENTS = re.compile(r"__file__\)?(?:\.resolve\(\))?\s*\.parents?\b")


def test_test_files_import_the_root_instead_of_computing_it() -> None:
    """No file under tests/ but tests/paths.py walks up from its own __file__ (`parents[N]`,
    `.parent.parent`): it imports `from tests.paths import ROOT`."""
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path != ROOT / "tests" / "paths.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _COUNTS_PARENTS.search(line)
    ]
    assert offenders == []
    file = "__" + "file__"  # spelled apart, else this test would find itself
    assert _COUNTS_PARENTS.search(f"ROOT = pathlib.Path({file}).resolve().parents[3]")
    assert _COUNTS_PARENTS.search(f"HERE = Path({file}).parent.parent / 'x'")
