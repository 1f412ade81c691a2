"""Build, or check, the wheelhouse ftpsd's hosts install from (the ftps_server role; lab/wheelhouse.sh).

    python3 build_wheelhouse.py --src DIR --out DIR TARGET...          build what is missing or outdated
    python3 build_wheelhouse.py --check --out DIR [--src DIR] TARGET...  only check (a pre-built wheelhouse)

TARGET is <python version>-<machine>, e.g. 3.11-x86_64 (Debian 12), 3.13-x86_64 (Debian 13).
OUT/common/ holds the pure-Python wheels built here once (ftpsd and ftpskit-common from the
collection's src/, and any dependency PyPI has only as a source archive, if it builds as pure
Python); OUT/TARGET/ holds everything one host installs (`pip install --no-index --find-links`),
with SHA256SUMS and .inputs.json (the cache key and what it covers).

Each target is resolved FOR THE TARGET without its interpreter: pip fetches binary wheels for the
target's Python, ABI and platforms (--python-version, --abi, --platform), but pip evaluates
dependency markers (`pyasynchat; python_version >= "3.12"`) with the interpreter that runs it,
whatever --python-version says. So pip only fetches (--no-deps) and this script follows the
dependencies itself, evaluating every marker for the target, until the set of requirements no
longer changes. Before a target is installed in OUT it is checked complete: every requirement of
ftpsd's closure, markers evaluated for the target, is met by exactly one wheel that installs on
the target. A target is rebuilt when its cache key changes: this script, the sources, the pins,
pip's configuration (indexes, find-links, constraints) and the target's Python, ABIs, platforms
and marker environment.

Environment: FTPSD_PINS (space-separated requirements; default: pyftpdlib, pyOpenSSL and
prometheus_client at the versions this Python has, so hosts run what the controller tested).
Output: one line per target on stdout, the last one `wheelhouse: changed` or `wheelhouse:
unchanged`; errors on stderr as `build-wheelhouse: ...`, exit status 1 (2: a wheelhouse that is
incomplete for a target, with every problem listed).
"""

from __future__ import annotations

import argparse
import dataclasses
import email.parser
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.tags import Tag, compatible_tags, cpython_tags
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
    from packaging.version import Version
except ImportError:  # pragma: no cover - ansible-core depends on packaging
    sys.exit("build-wheelhouse: this Python lacks the 'packaging' library (ansible-core's own dependency)")

# glibc of the oldest supported server (Debian 12: 2.36); Debian 13 (2.41) accepts all of these.
GLIBC_MINORS = range(17, 37)
# The kit's own distributions: always the local wheels, never a name looked up on an index (an
# index's package of the same name must not replace them).
OWN = ("ftpsd", "ftpskit-common")
# The pins FTPSD_PINS defaults to (the controller's versions of them).
PINNED = ("pyftpdlib", "pyOpenSSL", "prometheus_client")
# Fetch rounds per target until the requirements settle (ftpsd's tree settles in 4), and
# dependencies built from source archives per run.
MAX_ROUNDS = 12
# pip's settings that change which wheels it fetches (part of the cache key).
PIP_SETTINGS = frozenset(
    (
        "index-url",
        "extra-index-url",
        "find-links",
        "no-index",
        "constraint",
        "pre",
        "prefer-binary",
        "no-binary",
        "only-binary",
    )
)
MAX_SOURCE_BUILDS = 8
SCRIPT = Path(__file__).resolve()


class WheelhouseError(Exception):
    """A sentence for the operator; the exit status says which kind."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Target:
    """A host's Python (major, minor) and machine, as the role names it from the host's facts."""

    python: tuple[int, int]
    machine: str

    @classmethod
    def parse(cls, text: str) -> Target:
        match = re.fullmatch(r"(\d+)\.(\d+)-([A-Za-z0-9_]+)", text)
        if not match:
            raise WheelhouseError(f"target '{text}' is not <python version>-<machine>, e.g. 3.13-x86_64")
        return cls((int(match[1]), int(match[2])), match[3])

    @property
    def name(self) -> str:
        return f"{self.python[0]}.{self.python[1]}-{self.machine}"

    @property
    def version(self) -> str:
        return f"{self.python[0]}.{self.python[1]}"

    @property
    def abi(self) -> str:
        return f"cp{self.python[0]}{self.python[1]}"

    @property
    def platforms(self) -> list[str]:
        return [f"manylinux_2_{minor}_{self.machine}" for minor in reversed(GLIBC_MINORS)] + [
            f"manylinux2014_{self.machine}"
        ]

    def environment(self) -> dict[str, str]:
        """PEP 508 marker values of a CPython of this version on Linux (Debian) on this machine.

        The patch level is unknown from the target's name: python_full_version is X.Y.0."""
        full = f"{self.version}.0"
        return {
            "implementation_name": "cpython",
            "implementation_version": full,
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": full,
            "python_version": self.version,
            "sys_platform": "linux",
        }

    def tags(self) -> frozenset[Tag]:
        """The wheel tags pip accepts on the target (pip's own order does not matter here)."""
        return frozenset(cpython_tags(self.python, [self.abi, "abi3", "none"], self.platforms)) | frozenset(
            compatible_tags(self.python, self.abi, self.platforms)
        )

    def pip_options(self) -> list[str]:
        """pip's options that select wheels for the target (markers are this script's job)."""
        options = ["--only-binary=:all:", "--python-version", self.version, "--implementation", "cp"]
        for abi in (self.abi, "abi3", "none"):
            options += ["--abi", abi]
        for platform in self.platforms:
            options += ["--platform", platform]
        return options

    def describe(self) -> dict[str, object]:
        """Everything about the target that changes the result (part of the cache key)."""
        return {
            "target": self.name,
            "pip_options": self.pip_options(),
            "environment": self.environment(),
        }


@dataclasses.dataclass(frozen=True)
class Wheel:
    path: Path
    name: str
    version: Version
    tags: frozenset[Tag]
    requires: tuple[Requirement, ...]
    requires_python: SpecifierSet | None

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def read_wheel(path: Path) -> Wheel:
    """A wheel's name, version and tags (file name) and its dependencies (METADATA)."""
    try:
        name, version, _build, tags = parse_wheel_filename(path.name)
        with zipfile.ZipFile(path) as archive:
            metadata = [n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            if len(metadata) != 1:
                raise WheelhouseError(f"{path.name}: not a wheel (no single *.dist-info/METADATA)")
            headers = email.parser.HeaderParser().parsestr(archive.read(metadata[0]).decode("utf-8"))
        requires = tuple(Requirement(text) for text in headers.get_all("Requires-Dist") or [])
        requires_python = headers.get("Requires-Python")
        return Wheel(
            path,
            canonicalize_name(name),
            version,
            frozenset(tags),
            requires,
            SpecifierSet(requires_python) if requires_python else None,
        )
    except (
        InvalidWheelFilename,
        InvalidRequirement,
        InvalidSpecifier,
        zipfile.BadZipFile,
        OSError,
        UnicodeDecodeError,
    ) as exc:
        raise WheelhouseError(f"{path.name}: unreadable wheel ({exc})") from exc


def plain(requirement: Requirement) -> Requirement:
    """The requirement without its marker (already evaluated for the target)."""
    if requirement.url:
        raise WheelhouseError(
            f"'{requirement}': a direct URL dependency cannot be fetched for a target; pin a version"
        )
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    return Requirement(f"{canonicalize_name(requirement.name)}{extras}{requirement.specifier}")


def closure(
    roots: Iterable[Requirement], wheels: dict[str, Wheel], environment: dict[str, str]
) -> list[tuple[Requirement, str]]:
    """Every requirement reachable from `roots` through the wheels at hand, each with who needs it.

    A dependency counts when its marker holds for `environment` (the target's), with `extra` set
    to each extra its dependents ask for. A requirement whose wheel is not at hand is listed but
    not followed (the next fetch round brings it)."""
    found: dict[str, tuple[Requirement, str]] = {}
    followed: set[tuple[str, str]] = set()
    queue = [(plain(root), "the kit") for root in roots]
    while queue:
        requirement, parent = queue.pop(0)
        found.setdefault(str(requirement), (requirement, parent))
        wheel = wheels.get(canonicalize_name(requirement.name))
        if wheel is None:
            continue
        for extra in ("", *sorted(requirement.extras)):
            if (wheel.name, extra) in followed:
                continue
            followed.add((wheel.name, extra))
            for dependency in wheel.requires:
                if dependency.marker is None or dependency.marker.evaluate({**environment, "extra": extra}):
                    queue.append((plain(dependency), wheel.label))
    return list(found.values())


def read_wheels(directory: Path) -> tuple[dict[str, Wheel], list[str]]:
    """The wheels of a directory by normalised name, and the problems met reading them."""
    wheels: dict[str, Wheel] = {}
    problems = []
    for path in sorted(directory.glob("*.whl")):
        try:
            wheel = read_wheel(path)
        except WheelhouseError as exc:
            problems.append(str(exc))
            continue
        if wheel.name in wheels:
            problems.append(f"two wheels of {wheel.name}: {wheels[wheel.name].path.name} and {path.name}")
        wheels[wheel.name] = wheel
    return wheels, problems


def check(directory: Path, target: Target, roots: list[Requirement]) -> list[str]:
    """What keeps `directory` from installing `roots` on `target` with `pip --no-index`; [] = complete."""
    if not directory.is_dir():
        return [f"{directory} does not exist"]
    wheels, problems = read_wheels(directory)
    tags = target.tags()
    python = Version(f"{target.version}.0")
    for wheel in wheels.values():
        if not wheel.tags & tags:
            problems.append(
                f"{wheel.path.name} does not install on CPython {target.version} {target.machine}"
            )
        if wheel.requires_python is not None and not wheel.requires_python.contains(python, prereleases=True):
            problems.append(
                f"{wheel.path.name} requires Python {wheel.requires_python}, the target has {target.version}"
            )
    for requirement, parent in closure(roots, wheels, target.environment()):
        wheel = wheels.get(canonicalize_name(requirement.name))
        if wheel is None:
            problems.append(f"no wheel of {requirement.name} for {requirement} (needed by {parent})")
        elif not requirement.specifier.contains(wheel.version, prereleases=True):
            problems.append(f"{wheel.path.name} does not meet {requirement} (needed by {parent})")
    problems += check_sums(directory)
    return problems


def sums(directory: Path) -> str:
    """SHA256SUMS of a directory's wheels, sorted by name (sha256sum's format)."""
    lines = []
    for path in sorted(directory.glob("*.whl"), key=lambda p: p.name):
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    return "".join(lines)


def check_sums(directory: Path) -> list[str]:
    manifest = directory / "SHA256SUMS"
    if not manifest.is_file():
        return [f"{manifest} is missing (the role copies a target by it)"]
    if manifest.read_text() != sums(directory):
        return [f"{manifest} does not match the wheels beside it"]
    return []


def tree_digest(directory: Path) -> str:
    """One hash of every source file under `directory` (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory)
        if "__pycache__" in relative.parts or path.suffix == ".pyc":
            continue
        digest.update(f"{relative}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def cache_key(inputs: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def target_inputs(inputs: dict[str, object], target: Target) -> dict[str, object]:
    """What one target's wheels depend on: the shared inputs and the target's own settings."""
    return {**inputs, **target.describe()}


def default_pins() -> list[str]:
    pins = []
    for dist in PINNED:
        try:
            pins.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(dist)
    return pins


def parse_pins(text: str) -> list[Requirement]:
    try:
        pins = [Requirement(item) for item in text.split()]
    except InvalidRequirement as exc:
        raise WheelhouseError(f"FTPSD_PINS: {exc}") from exc
    own = [str(pin) for pin in pins if canonicalize_name(pin.name) in OWN]
    if own:
        raise WheelhouseError(f"FTPSD_PINS must not name the kit's own distributions: {', '.join(own)}")
    return pins


def own_version(path: Path) -> str:
    """`__version__` of a package's __init__.py (ftpsd's and ftpskit_common's, as hatch reads it)."""
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", path.read_text(), re.MULTILINE)
    if not match:
        raise WheelhouseError(f"no __version__ in {path}")
    return match[1]


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def pip_errors(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    return " ".join(lines[-3:]) or proc.stderr.strip()[-400:] or f"pip exited with {proc.returncode}"


def pip_config() -> list[str]:
    """pip's settings that change what it fetches (from its files and PIP_* variables: indexes,
    find-links, constraints...), and the contents of the constraint files they name."""
    proc = pip("config", "list")
    lines = []
    for line in sorted(proc.stdout.splitlines()) if proc.returncode == 0 else []:
        match = re.fullmatch(r"[^.=]*\.([a-z-]+)='(.*)'", line)
        if not match or match[1] not in PIP_SETTINGS:
            continue
        lines.append(line)
        for name in match[2].split() if match[1] == "constraint" else []:
            path = Path(name)
            content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
            lines.append(f"constraint file {name}: {content}")
    return lines


def unavailable(proc: subprocess.CompletedProcess[str]) -> list[Requirement]:
    """The requirements pip found no wheel for ("No matching distribution found for X")."""
    found = []
    for match in re.finditer(r"No matching distribution found for (\S+)", proc.stderr):
        try:
            found.append(Requirement(match[1]))
        except InvalidRequirement:
            continue
    return found


@dataclasses.dataclass
class Builder:
    src: Path
    out: Path
    pins: list[Requirement]
    log: list[str] = dataclasses.field(default_factory=list)
    source_builds: int = 0

    @property
    def shared(self) -> Path:
        """The collection's module_utils package the ftpskit-common wheel packs."""
        return self.src.parent / "plugins" / "module_utils" / "ftpskit_common"

    @property
    def common(self) -> Path:
        return self.out / "common"

    def inputs(self) -> dict[str, object]:
        return {
            "script": hashlib.sha256(SCRIPT.read_bytes()).hexdigest(),
            "sources": {"src": tree_digest(self.src), "ftpskit_common": tree_digest(self.shared)},
            "pins": sorted(str(pin) for pin in self.pins),
            "pip_config": pip_config(),
        }

    def own_wheels(self) -> list[Path]:
        wheels = [
            next(iter(sorted(self.common.glob(f"{name.replace('-', '_')}-*.whl"))), None) for name in OWN
        ]
        missing = [name for name, wheel in zip(OWN, wheels, strict=True) if wheel is None]
        if missing:
            raise WheelhouseError(f"no {' or '.join(missing)} wheel in {self.common}")
        return [wheel for wheel in wheels if wheel is not None]

    def build_common(self, key: str) -> bool:
        """ftpsd and ftpskit-common as wheels, once for every target. True if (re)built."""
        stamp = self.common / ".inputs.json"
        if stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
            return False
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".common.", dir=self.out))
        try:
            proc = pip(
                "wheel",
                "--quiet",
                "--no-deps",
                "--wheel-dir",
                str(tmp),
                str(self.src),
                str(self.src / "common"),
            )
            if proc.returncode != 0:
                raise WheelhouseError(
                    f"building ftpsd and ftpskit-common from {self.src} failed: {pip_errors(proc)}"
                )
            (tmp / ".inputs.json").write_text(json.dumps({"key": key}, indent=1) + "\n")
            shutil.rmtree(self.common, ignore_errors=True)
            tmp.rename(self.common)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.log.append("common: built ftpsd and ftpskit-common")
        return True

    def build_from_source(self, requirement: Requirement, target: Target) -> None:
        """A dependency the index has only as a source archive: built here, kept if pure Python."""
        if self.source_builds >= MAX_SOURCE_BUILDS:
            raise WheelhouseError(
                f"more than {MAX_SOURCE_BUILDS} dependencies have no wheel; giving up at {requirement}"
            )
        self.source_builds += 1
        name = canonicalize_name(requirement.name)
        if any(read_wheel(path).name == name for path in self.common.glob("*.whl")):
            raise WheelhouseError(
                f"pip found no wheel of {requirement} for {target.name} although one was built from "
                f"source in {self.common}: its version does not meet the requirement"
            )
        with tempfile.TemporaryDirectory(dir=self.out) as tmp:
            proc = pip(
                "wheel", "--quiet", "--no-deps", "--no-binary", name, "--wheel-dir", tmp, str(requirement)
            )
            if proc.returncode != 0:
                raise WheelhouseError(
                    f"pip found no wheel of {requirement} for CPython {target.version} on {target.machine}, "
                    "and building it from source failed (is the index reachable from the controller?): "
                    f"{pip_errors(proc)}"
                )
            (built,) = Path(tmp).glob("*.whl")
            wheel = read_wheel(built)
            if not all(tag.abi == "none" and tag.platform == "any" for tag in wheel.tags):
                raise WheelhouseError(
                    f"{requirement} has no wheel for CPython {target.version} on {target.machine} on the "
                    f"index, and its source builds {built.name}, which is not pure Python: build it on a "
                    f"{target.name} host and hand the role a pre-built wheelhouse "
                    "(ftps_server_wheelhouse_dir, ftps_server_wheelhouse_build: false)"
                )
            shutil.move(str(built), self.common / built.name)
        self.log.append(f"common: built {wheel.label} from its source (pure Python; the index has no wheel)")

    def resolve(self, target: Target, workdir: Path) -> Path:
        """Fetch round by round until the requirements settle; the directory of the last round."""
        environment = target.environment()
        own = self.own_wheels()
        roots = [Requirement(f"ftpsd=={read_wheel(own[0]).version}"), *self.pins]
        wanted = [plain(root) for root in roots]
        for attempt in range(MAX_ROUNDS + MAX_SOURCE_BUILDS):
            directory = workdir / f"round{attempt}"
            names = sorted({str(r) for r in wanted if canonicalize_name(r.name) not in OWN})
            proc = pip(
                "download",
                "--quiet",
                "--no-deps",
                *target.pip_options(),
                "--find-links",
                str(self.common),
                "--dest",
                str(directory),
                *map(str, own),
                *names,
            )
            if proc.returncode != 0:
                missing = unavailable(proc)
                if not missing:
                    raise WheelhouseError(
                        f"pip could not fetch wheels for {target.name} "
                        "(is the index reachable from the controller?): "
                        f"{pip_errors(proc)}"
                    )
                for requirement in missing:
                    self.build_from_source(requirement, target)
                continue
            wheels, problems = read_wheels(directory)
            if problems:
                raise WheelhouseError(f"{target.name}: {'; '.join(problems)}")
            needed = closure(roots, wheels, environment)
            if {str(r) for r, _parent in needed} == {str(r) for r in wanted}:
                return directory
            wanted = [requirement for requirement, _parent in needed]
        raise WheelhouseError(
            f"{target.name}: the requirements did not settle in {MAX_ROUNDS} rounds: "
            f"{sorted(map(str, wanted))}"
        )

    def build(self, targets: list[Target]) -> bool:
        """Every target up to date and complete in OUT. True if anything was (re)built."""
        inputs = self.inputs()
        changed = self.build_common(cache_key(inputs))
        own = self.own_wheels()
        roots = [Requirement(f"ftpsd=={read_wheel(own[0]).version}")]
        for target in targets:
            key_inputs = target_inputs(inputs, target)
            key = cache_key(key_inputs)
            directory = self.out / target.name
            stamp = directory / ".inputs.json"
            if (
                stamp.is_file()
                and json.loads(stamp.read_text()).get("key") == key
                and not check(directory, target, roots)
            ):
                self.log.append(f"{target.name}: up to date")
                continue
            with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=self.out) as tmp:
                result = self.resolve(target, Path(tmp))
                (result / "SHA256SUMS").write_text(sums(result))
                problems = check(result, target, roots)
                if problems:
                    raise WheelhouseError(f"{target.name} is incomplete: " + "; ".join(problems), status=2)
                (result / ".inputs.json").write_text(
                    json.dumps({"key": key, "inputs": key_inputs}, indent=1) + "\n"
                )
                shutil.rmtree(directory, ignore_errors=True)
                result.rename(directory)
            count = len(list(directory.glob("*.whl")))
            self.log.append(
                f"{target.name}: resolved for CPython {target.version} on {target.machine}, "
                f"{count} wheels, complete"
            )
            changed = True
        return changed


def check_only(out: Path, targets: list[Target], src: Path | None) -> list[str]:
    """A pre-built wheelhouse: each target complete, with this collection's ftpsd when src is known."""
    expected = own_version(src / "ftpsd" / "__init__.py") if src else None
    root = Requirement(f"ftpsd=={expected}" if expected else "ftpsd")
    problems = []
    for target in targets:
        problems += [f"{target.name}: {problem}" for problem in check(out / target.name, target, [root])]
    return problems


LOCK_WAIT = 900  # seconds a build waits for another run's build of the same wheelhouse


class BuildLock:
    """One build of a wheelhouse at a time. Two playbooks run side by side from one controller
    (two Molecule scenarios, two AWX jobs on one node sharing a wheelhouse) would otherwise both
    replace a target directory, the second removing it while the first copies from it. The lock
    is an flock on OUT/.lock: released by the kernel when the process ends, however it ends.
    Waiting is bounded (LOCK_WAIT); the runner-up then finds the wheelhouse up to date."""

    def __init__(self, out: Path, wait: float | None = None) -> None:
        self.path = out / ".lock"
        self.wait = LOCK_WAIT if wait is None else wait
        self.fd = -1

    def __enter__(self) -> BuildLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(self.fd)
                    raise WheelhouseError(
                        f"another build of {self.path.parent} held {self.path} for over {self.wait:.0f} s"
                    ) from None
                time.sleep(0.5)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing releases the flock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--src", type=Path, help="the collection's src/ (ftpsd's sources)")
    parser.add_argument("--out", type=Path, required=True, help="the wheelhouse directory")
    parser.add_argument(
        "--check", action="store_true", help="only check OUT for the targets (no network, no writes)"
    )
    parser.add_argument(
        "targets", nargs="+", metavar="TARGET", help="<python version>-<machine>, e.g. 3.13-x86_64"
    )
    args = parser.parse_args(argv)
    try:
        targets = [Target.parse(text) for text in args.targets]
        src = args.src.resolve() if args.src else None
        if src and not (src / "pyproject.toml").is_file():
            raise WheelhouseError(
                f"--src must be ftpsd's source directory (with pyproject.toml), got '{args.src}'"
            )
        out = args.out.resolve()
        if args.check:
            problems = check_only(out, targets, src)
            if problems:
                raise WheelhouseError(f"the wheelhouse {out} is incomplete: " + "; ".join(problems), status=2)
            print(*(f"{target.name}: complete" for target in targets), "wheelhouse: unchanged", sep="\n")
            return 0
        if src is None:
            raise WheelhouseError("building needs --src (the collection's src/); --check only checks")
        builder = Builder(src, out, parse_pins(os.environ.get("FTPSD_PINS") or " ".join(default_pins())))
        with BuildLock(out):
            changed = builder.build(targets)
        print(*builder.log, f"wheelhouse: {'changed' if changed else 'unchanged'}", sep="\n")
        return 0
    except WheelhouseError as exc:
        print(f"build-wheelhouse: {exc}", file=sys.stderr)
        return exc.status


if __name__ == "__main__":
    sys.exit(main())
