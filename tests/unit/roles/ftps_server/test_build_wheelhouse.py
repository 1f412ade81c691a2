"""roles/ftps_server/files/build_wheelhouse.py: wheels resolved for the target, not the controller.

A fake index (pip replaced by a function that copies synthetic wheels) stands in for PyPI, so
these tests need no network: pip's command line per round, the marker evaluation for the
target, the cache key and the completeness check.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys
import zipfile

import pytest

from tests.paths import ROOT

SCRIPT = ROOT / "roles" / "ftps_server" / "files" / "build_wheelhouse.py"
_spec = importlib.util.spec_from_file_location("build_wheelhouse", SCRIPT)
assert _spec and _spec.loader
bw = importlib.util.module_from_spec(_spec)
sys.modules["build_wheelhouse"] = bw
_spec.loader.exec_module(bw)

PY311 = bw.Target.parse("3.11-x86_64")
PY313 = bw.Target.parse("3.13-x86_64")


def make_wheel(
    directory: pathlib.Path,
    name: str,
    version: str,
    tag: str = "py3-none-any",
    *,
    requires: tuple[str, ...] = (),
    requires_python: str | None = None,
) -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    dist = f"{name.replace('-', '_')}-{version}"
    path = directory / f"{dist}-{tag}.whl"
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{dist}.dist-info/METADATA", "\n".join(lines) + "\n")
    return path


# ftpsd's real dependency tree, as the index serves it (versions trimmed).
FTPSD_REQUIRES = (
    "ftpskit-common==0.1.0",
    "pyftpdlib>=2.0,<3",
    "pyOpenSSL>=25,<27",
    "cryptography>=42",
    "prometheus_client>=0.17",
)
INDEX = {
    "pyftpdlib": (
        "2.2.0",
        "py3-none-any",
        (
            'pyasynchat; python_version >= "3.12"',
            'pyasyncore; python_version >= "3.12"',
            'PyOpenSSL; extra == "ssl"',
        ),
    ),
    "pyopenssl": (
        "26.4.0",
        "py3-none-any",
        (
            "cryptography>=45,<47",
            'typing-extensions>=4.9; python_version < "3.13" and python_version >= "3.8"',
        ),
    ),
    "cryptography": (
        "46.0.3",
        "cp311-abi3-manylinux_2_34_x86_64",
        ("cffi>=2.0.0; platform_python_implementation != 'PyPy'",),
    ),
    "cffi": ("2.1.1", "{abi}-{abi}-manylinux_2_17_x86_64", ("pycparser",)),
    "pycparser": ("3.12", "py3-none-any", ()),
    "prometheus-client": ("0.26.0", "py3-none-any", ()),
    "pyasynchat": ("1.0.5", "py3-none-any", ("pyasyncore",)),
    "pyasyncore": ("1.0.5", "py3-none-any", ()),
    "typing-extensions": ("4.16.0", "py3-none-any", ()),
}


def complete_target(directory: pathlib.Path, target, skip: tuple[str, ...] = ()) -> pathlib.Path:
    """A target directory as the build leaves it (all of ftpsd's closure for `target`, SHA256SUMS)."""
    make_wheel(directory, "ftpsd", "0.1.0", requires=FTPSD_REQUIRES)
    make_wheel(directory, "ftpskit-common", "0.1.0")
    env = target.environment()
    for name, (version, tag, requires) in INDEX.items():
        if name in skip:
            continue
        if name in {"pyasynchat", "pyasyncore"} and target.python < (3, 12):
            continue
        if name == "typing-extensions" and target.python >= (3, 13):
            continue
        make_wheel(directory, name, version, tag.format(abi=target.abi), requires=requires)
    assert env["python_version"] == target.version
    (directory / "SHA256SUMS").write_text(bw.sums(directory))
    return directory


ROOTS = [bw.Requirement("ftpsd==0.1.0")]


# --- targets: pip's options and the marker environment -----------------------------------------
def test_pip_options_select_the_targets_wheels_exactly() -> None:
    platforms = [f"manylinux_2_{m}_x86_64" for m in range(36, 16, -1)] + ["manylinux2014_x86_64"]
    expected = [
        "--only-binary=:all:",
        "--python-version",
        "3.13",
        "--implementation",
        "cp",
        "--abi",
        "cp313",
        "--abi",
        "abi3",
        "--abi",
        "none",
    ]
    for platform in platforms:
        expected += ["--platform", platform]
    assert PY313.pip_options() == expected


def test_marker_environment_is_the_targets_not_the_controllers() -> None:
    env = bw.Target.parse("3.13-aarch64").environment()
    assert env["python_version"] == "3.13"
    assert env["python_full_version"] == "3.13.0"
    assert env["platform_machine"] == "aarch64"
    assert env["sys_platform"] == "linux"
    assert env["implementation_name"] == "cpython"
    # every PEP 508 variable is set, so nothing falls back to the running interpreter
    assert set(env) == {
        "implementation_name",
        "implementation_version",
        "os_name",
        "platform_machine",
        "platform_python_implementation",
        "platform_release",
        "platform_system",
        "platform_version",
        "python_full_version",
        "python_version",
        "sys_platform",
    }


@pytest.mark.parametrize("text", ["3.13", "py3.13-x86_64", "3-x86_64", "3.13-x86 64", "3.13-"])
def test_a_bad_target_name_is_refused(text: str) -> None:
    with pytest.raises(bw.WheelhouseError, match="is not <python version>-<machine>"):
        bw.Target.parse(text)


# --- the closure: markers and extras for the target --------------------------------------------
@pytest.mark.parametrize(
    ("target", "present", "absent"),
    [
        (PY313, {"pyasynchat", "pyasyncore"}, {"typing-extensions"}),
        (PY311, {"typing-extensions"}, {"pyasynchat", "pyasyncore"}),
    ],
)
def test_closure_evaluates_markers_for_the_target(tmp_path, target, present, absent) -> None:
    directory = complete_target(tmp_path / target.name, PY313)  # every wheel at hand
    wheels, problems = bw.read_wheels(directory)
    assert problems == []
    needed = {bw.canonicalize_name(r.name) for r, _ in bw.closure(ROOTS, wheels, target.environment())}
    assert present <= needed
    assert not absent & needed
    # extras nobody asked for are not followed (pyftpdlib[ssl] would add nothing new here anyway)
    parents = {str(r): parent for r, parent in bw.closure(ROOTS, wheels, target.environment())}
    if target is PY313:
        assert parents["pyasynchat"] == "pyftpdlib 2.2.0"


def test_closure_follows_requested_extras(tmp_path) -> None:
    make_wheel(tmp_path, "a", "1.0", requires=("b[fast]>=1",))
    make_wheel(tmp_path, "b", "1.0", requires=('c; extra == "fast"', 'd; extra == "slow"'))
    wheels, _ = bw.read_wheels(tmp_path)
    needed = sorted(str(r) for r, _ in bw.closure([bw.Requirement("a")], wheels, PY313.environment()))
    assert needed == ["a", "b[fast]>=1", "c"]


# --- the completeness check -------------------------------------------------------------------
@pytest.mark.parametrize("target", [PY311, PY313])
def test_a_complete_target_passes(tmp_path, target) -> None:
    assert bw.check(complete_target(tmp_path / target.name, target), target, ROOTS) == []


def test_the_old_bug_a_313_target_resolved_as_311_is_incomplete(tmp_path) -> None:
    """What a 3.11 controller used to produce for 3.13: no pyasynchat/pyasyncore, cp311 cffi."""
    directory = complete_target(tmp_path / "3.13-x86_64", PY311)
    problems = bw.check(directory, PY313, ROOTS)
    assert sorted(problems) == sorted(
        [
            "cffi-2.1.1-cp311-cp311-manylinux_2_17_x86_64.whl does not install on CPython 3.13 x86_64",
            "no wheel of pyasynchat for pyasynchat (needed by pyftpdlib 2.2.0)",
            "no wheel of pyasyncore for pyasyncore (needed by pyftpdlib 2.2.0)",
        ]
    )


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda d: (d / "SHA256SUMS").unlink(), r"SHA256SUMS is missing"),
        (lambda d: make_wheel(d, "pyasyncore", "0.9", "py3-none-any"), r"two wheels of pyasyncore"),
        (lambda d: (d / "SHA256SUMS").write_text("0  x.whl\n"), r"SHA256SUMS does not match"),
        (
            lambda d: next(d.glob("ftpskit_common-*")).rename(d / "ftpskit_common-0.2.0-py3-none-any.whl"),
            r"ftpskit_common-0.2.0-py3-none-any.whl does not meet ftpskit-common==0.1.0 "
            r"\(needed by ftpsd 0.1.0\)",
        ),
        (
            lambda d: make_wheel(d, "extra", "1", requires_python=">=3.14"),
            r"requires Python >=3.14, the target has 3.13",
        ),
        (
            lambda d: (d / "junk-1-py3-none-any.whl").write_text("not a zip"),
            r"junk-1-py3-none-any.whl: unreadable wheel",
        ),
    ],
)
def test_an_incomplete_or_damaged_target_is_named(tmp_path, damage, problem) -> None:
    directory = complete_target(tmp_path / "3.13-x86_64", PY313)
    damage(directory)
    problems = bw.check(directory, PY313, ROOTS)
    assert any(re.search(problem, p) for p in problems), problems


def test_check_only_wants_this_collections_ftpsd(tmp_path) -> None:
    out = tmp_path / "wh"
    complete_target(out / "3.13-x86_64", PY313)
    src = tmp_path / "src"
    (src / "ftpsd").mkdir(parents=True)
    (src / "pyproject.toml").write_text("")
    (src / "ftpsd" / "__init__.py").write_text('__version__ = "0.1.0"\n')
    assert bw.check_only(out, [PY313], src) == []
    (src / "ftpsd" / "__init__.py").write_text('__version__ = "0.2.0"\n')
    assert bw.check_only(out, [PY313], src) == [
        "3.13-x86_64: ftpsd-0.1.0-py3-none-any.whl does not meet ftpsd==0.2.0 (needed by the kit)"
    ]
    assert bw.check_only(out, [PY311], None) == [f"3.11-x86_64: {out / '3.11-x86_64'} does not exist"]


def test_the_command_line_fails_an_incomplete_prebuilt_wheelhouse_with_status_2(tmp_path) -> None:
    out = tmp_path / "wh"
    complete_target(out / "3.13-x86_64", PY313, skip=("pyasyncore",))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--out", str(out), "3.13-x86_64"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"build-wheelhouse: the wheelhouse {out} is incomplete: 3.13-x86_64: ")
    assert "no wheel of pyasyncore for pyasyncore (needed by pyftpdlib 2.2.0)" in proc.stderr
    assert "wheelhouse:" not in proc.stdout


# --- the cache key ----------------------------------------------------------------------------
def _inputs(**change) -> dict:
    inputs = {
        "script": "s",
        "sources": {"src": "a", "ftpskit_common": "b"},
        "pins": ["pyftpdlib==2.2.0"],
        "pip_config": ["global.index-url='https://pypi.org/simple'"],
    }
    inputs.update(change)
    return inputs


def test_cache_key_covers_everything_that_changes_the_result() -> None:
    base = bw.cache_key(bw.target_inputs(_inputs(), PY313))
    assert base == bw.cache_key(bw.target_inputs(_inputs(), bw.Target.parse("3.13-x86_64")))
    variants = [
        bw.target_inputs(_inputs(), PY311),
        bw.target_inputs(_inputs(), bw.Target.parse("3.13-aarch64")),
        bw.target_inputs(_inputs(script="t"), PY313),
        bw.target_inputs(_inputs(sources={"src": "a2", "ftpskit_common": "b"}), PY313),
        bw.target_inputs(_inputs(sources={"src": "a", "ftpskit_common": "b2"}), PY313),
        bw.target_inputs(_inputs(pins=["pyftpdlib==2.3.0"]), PY313),
        bw.target_inputs(_inputs(pip_config=["global.index-url='https://mirror/simple'"]), PY313),
    ]
    keys = {bw.cache_key(v) for v in variants}
    assert len(keys) == len(variants)
    assert base not in keys


def test_cache_key_inputs_name_the_target_not_the_controller(monkeypatch, tmp_path) -> None:
    """The old key ignored which interpreter resolved; the new result does not depend on it, and
    the key holds the target's Python, ABIs, platforms and marker environment."""
    src = tmp_path / "src"
    (src / "ftpsd").mkdir(parents=True)
    (src / "ftpsd" / "x.py").write_text("1")
    (tmp_path / "plugins" / "module_utils" / "ftpskit_common").mkdir(parents=True)
    monkeypatch.setattr(bw, "pip_config", lambda: ["global.find-links='/w'"])
    builder = bw.Builder(src, tmp_path / "out", [bw.Requirement("pyftpdlib==2.2.0")])
    inputs = bw.target_inputs(builder.inputs(), PY313)
    assert set(inputs) == {"script", "sources", "pins", "pip_config", "target", "pip_options", "environment"}
    assert inputs["target"] == "3.13-x86_64"
    assert inputs["environment"]["python_version"] == "3.13"
    assert sys.executable not in json.dumps(inputs)
    before = bw.cache_key(inputs)
    (src / "ftpsd" / "x.py").write_text("2")
    changed = bw.cache_key(bw.target_inputs(builder.inputs(), PY313))
    assert changed != before
    # byte code is not a source
    (src / "ftpsd" / "__pycache__").mkdir()
    (src / "ftpsd" / "__pycache__" / "x.cpython-311.pyc").write_text("cache")
    assert bw.cache_key(bw.target_inputs(builder.inputs(), PY313)) == changed


# --- resolution against a fake index -----------------------------------------------------------
class FakeIndex:
    """pip replaced: `download` copies wheels of the requested names for the target's ABI;
    pyftpdlib is a source archive only (as on PyPI) unless `pyftpdlib_wheel`; `wheel` builds it."""

    def __init__(self, root: pathlib.Path, pure_sdist: bool = True) -> None:
        self.root = root
        self.pure_sdist = pure_sdist
        self.calls: list[list[str]] = []

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        if args[0] == "config":
            return subprocess.CompletedProcess(args, 0, "", "")
        if args[0] == "wheel":
            dest = pathlib.Path(args[args.index("--wheel-dir") + 1])
            if str(self.root / "src") in args:  # the kit's own wheels
                make_wheel(dest, "ftpsd", "0.1.0", requires=FTPSD_REQUIRES)
                make_wheel(dest, "ftpskit-common", "0.1.0")
            else:
                version, _tag, requires = INDEX["pyftpdlib"]
                make_wheel(
                    dest,
                    "pyftpdlib",
                    version,
                    "py3-none-any" if self.pure_sdist else "cp311-cp311-linux_x86_64",
                    requires=requires,
                )
            return subprocess.CompletedProcess(args, 0, "", "")
        assert args[0] == "download"
        dest = pathlib.Path(args[args.index("--dest") + 1])
        abi = args[args.index("--abi") + 1]
        links = pathlib.Path(args[args.index("--find-links") + 1])
        reqs = [a for a in args[args.index("--dest") + 2 :]]
        for req in reqs:
            if req.endswith(".whl"):
                dest.mkdir(parents=True, exist_ok=True)
                (dest / pathlib.Path(req).name).write_bytes(pathlib.Path(req).read_bytes())
                continue
            name = bw.canonicalize_name(bw.Requirement(req).name)
            local = [p for p in links.glob("*.whl") if bw.read_wheel(p).name == name]
            if local:
                (dest / local[0].name).write_bytes(local[0].read_bytes())
            elif name == "pyftpdlib" or name not in INDEX:
                return subprocess.CompletedProcess(
                    args,
                    1,
                    "",
                    f"ERROR: Could not find a version that satisfies the requirement {req} "
                    f"(from versions: none)\nERROR: No matching distribution found for {req}\n",
                )
            else:
                version, tag, requires = INDEX[name]
                make_wheel(dest, name, version, tag.format(abi=abi), requires=requires)
        return subprocess.CompletedProcess(args, 0, "", "")


@pytest.fixture
def kit(tmp_path) -> pathlib.Path:
    src = tmp_path / "src"
    (src / "common").mkdir(parents=True)
    (src / "pyproject.toml").write_text("")
    (tmp_path / "plugins" / "module_utils" / "ftpskit_common").mkdir(parents=True)
    return tmp_path


def test_build_resolves_each_target_for_its_own_python(kit, monkeypatch) -> None:
    index = FakeIndex(kit)
    monkeypatch.setattr(bw, "pip", index)
    builder = bw.Builder(kit / "src", kit / "out", [bw.Requirement("pyftpdlib==2.2.0")])
    assert builder.build([PY311, PY313]) is True
    names = {
        t.name: sorted(p.name.split("-")[0] for p in (kit / "out" / t.name).glob("*.whl"))
        for t in (PY311, PY313)
    }
    assert names == {
        "3.11-x86_64": [
            "cffi",
            "cryptography",
            "ftpsd",
            "ftpskit_common",
            "prometheus_client",
            "pycparser",
            "pyftpdlib",
            "pyopenssl",
            "typing_extensions",
        ],
        "3.13-x86_64": [
            "cffi",
            "cryptography",
            "ftpsd",
            "ftpskit_common",
            "prometheus_client",
            "pyasynchat",
            "pyasyncore",
            "pycparser",
            "pyftpdlib",
            "pyopenssl",
        ],
    }
    assert (kit / "out" / "3.13-x86_64" / "cffi-2.1.1-cp313-cp313-manylinux_2_17_x86_64.whl").is_file()
    assert builder.log[:2] == [
        "common: built ftpsd and ftpskit-common",
        "common: built pyftpdlib 2.2.0 from its source (pure Python; the index has no wheel)",
    ]
    downloads = [c for c in index.calls if c[0] == "download"]
    for call in downloads:
        # every fetch: no dependency resolution by pip (its markers would be the controller's),
        # binary wheels for exactly one target, the kit's own wheels as files, never as names
        assert call[:3] == ["download", "--quiet", "--no-deps"]
        options = call[3 : call.index("--find-links")]
        assert options in (PY311.pip_options(), PY313.pip_options())
        own = [a for a in call if a.endswith(".whl")]
        assert [pathlib.Path(a).name for a in own] == [
            "ftpsd-0.1.0-py3-none-any.whl",
            "ftpskit_common-0.1.0-py3-none-any.whl",
        ]
        assert not [a for a in call if re.match(r"(?i)ftpskit[-_]common[=<>]|ftpsd[=<>]", a)]
    # the rounds settle: each target's last fetch asks for exactly its closure
    last_313 = [c for c in downloads if "cp313" in c][-1]
    assert "pyasynchat" in last_313 and "typing-extensions>=4.9" not in last_313
    assert len(downloads) <= 2 * 6
    # unchanged inputs: nothing fetched again
    index.calls.clear()
    assert (
        bw.Builder(kit / "src", kit / "out", [bw.Requirement("pyftpdlib==2.2.0")]).build([PY311, PY313])
        is False
    )
    assert [c[0] for c in index.calls] == ["config"]


def test_a_source_only_dependency_that_is_not_pure_python_fails_clearly(kit, monkeypatch) -> None:
    monkeypatch.setattr(bw, "pip", FakeIndex(kit, pure_sdist=False))
    builder = bw.Builder(kit / "src", kit / "out", [bw.Requirement("pyftpdlib==2.2.0")])
    with pytest.raises(
        bw.WheelhouseError,
        match=r"pyftpdlib==2.2.0 has no wheel for CPython 3.13 on x86_64 .*"
        r"not pure Python: build it on a 3.13-x86_64 host and hand the role a pre-built wheelhouse",
    ):
        builder.build([PY313])
    assert not (kit / "out" / "3.13-x86_64").exists()


def test_an_unreachable_index_fails_clearly_and_keeps_the_old_target(kit, monkeypatch) -> None:
    monkeypatch.setattr(bw, "pip", FakeIndex(kit))
    bw.Builder(kit / "src", kit / "out", [bw.Requirement("pyftpdlib==2.2.0")]).build([PY313])
    before = bw.sums(kit / "out" / "3.13-x86_64")

    index = FakeIndex(kit)

    def offline(*args: str) -> subprocess.CompletedProcess[str]:
        if args[0] != "download":
            return index(*args)
        return subprocess.CompletedProcess(
            args, 1, "", "ERROR: Could not install packages due to an OSError: offline\n"
        )

    monkeypatch.setattr(bw, "pip", offline)
    with pytest.raises(bw.WheelhouseError, match=r"pip could not fetch wheels for 3.13-x86_64 .*offline"):
        bw.Builder(kit / "src", kit / "out", [bw.Requirement("pyftpdlib==2.3.0")]).build([PY313])
    assert bw.sums(kit / "out" / "3.13-x86_64") == before


def test_pins_must_not_name_the_kits_own_distributions() -> None:
    with pytest.raises(
        bw.WheelhouseError, match="must not name the kit's own distributions: ftpskit_common==9"
    ):
        bw.parse_pins("pyftpdlib==2.2.0 ftpskit_common==9")


def test_pip_settings_in_the_key_are_those_that_change_what_pip_fetches(monkeypatch, tmp_path) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("cryptography<46\n")
    listing = (
        ":env:.default-timeout='180'\n"
        ":env:.index-url='https://mirror.example/simple'\n"
        f"global.constraint='{constraints}'\n"
        "global.cert='/etc/ssl/certs/ca-certificates.crt'\n"
        "global.find-links='/opt/wheels'\n"
    )
    monkeypatch.setattr(bw, "pip", lambda *args: subprocess.CompletedProcess(args, 0, listing, ""))
    first = bw.pip_config()
    assert first[:2] == [
        ":env:.index-url='https://mirror.example/simple'",
        f"global.constraint='{constraints}'",
    ]
    assert first[2].startswith(f"constraint file {constraints}: ")
    assert first[3:] == ["global.find-links='/opt/wheels'"]
    constraints.write_text("cryptography<45\n")
    assert bw.pip_config() != first


def test_build_lock_serialises_builds_of_one_wheelhouse(tmp_path: pathlib.Path) -> None:
    """A second build of the same wheelhouse waits for the first (bounded), and gets it after
    the holder ends, however it ends (the kernel drops an flock with its process)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
            str(tmp_path / ".lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(bw.WheelhouseError, match=r"another build of .* held .*\.lock for over 1 s"),
            bw.BuildLock(tmp_path, wait=1),
        ):
            pytest.fail("the lock was taken while another process held it")
        holder.kill()  # dies holding it: no unlock call ever runs
        holder.wait(timeout=10)
        with bw.BuildLock(tmp_path, wait=5):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_main_builds_under_the_lock(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """main() takes the lock around the build: with the lock held elsewhere it waits, then fails
    with a clear message and writes nothing."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text("[project]\nname = 'ftpsd'\n")
    out = tmp_path / "wheelhouse"
    out.mkdir()
    monkeypatch.setattr(bw, "LOCK_WAIT", 1)
    built = []
    monkeypatch.setattr(bw.Builder, "build", lambda self, targets: built.append(targets) or True)
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        # Another open file description: flock conflicts even within one process.
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert bw.main(["--src", str(src), "--out", str(out), "3.11-x86_64"]) == 1
        assert built == []
    finally:
        os.close(fd)
    assert bw.main(["--src", str(src), "--out", str(out), "3.11-x86_64"]) == 0
    assert len(built) == 1
    assert sorted(p.name for p in out.iterdir()) == [".lock"]
