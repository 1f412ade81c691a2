"""A staged rollover of the controller's internal CA (playbooks/ca_rollover.yml, docs/ca-rollover.md).

Every decision and every file operation of the ``ftps_pki_ca_rollover`` module lives here, so the
unit tests drive it without Ansible, including a crash between any two steps.

Layout on the controller, beside the CA directory ``<ca>`` (``ftps_pki_ca_dir``)::

    <ca>/                   the CA that signs (ca.pem, ca.key): the old one until the swap, then the new one
    <ca>-next/              stage 1 .. swap: the new CA, trusted by the clients but not yet signing
    <ca>-previous/          swap .. stage 3: the old CA, its key kept (encrypted when a passphrase is set)
    <ca>-retired/<fp>/      after stage 3: the old CA's certificate only; its key is deleted
    <ca>-rollover.json      the state: which stage, the two CAs, when each step happened

Stages (the state's ``stage`` is the one in progress, or the next to run):

1. ``trust``   ``prepare`` makes ``<ca>-next``; the playbook makes every client trust old + new,
               checks it, then ``trusted``.
2. ``reissue`` ``swap`` makes the new CA the signing one (``<ca>`` -> ``<ca>-previous``,
               ``<ca>-next`` -> ``<ca>``); the playbook re-issues every internal-CA server (rolling,
               gated: rotate.yml), checks every server's certificate, then ``reissued``.
3. ``retire``  the playbook checks that no server serves a certificate from the old CA, then
               ``retire`` moves ``<ca>-previous`` to ``<ca>-retired/<fp>/`` and deletes its key;
               the clients drop the old CA, are checked, then ``retired``: ``complete``.

Each step checks the layout it starts from, does nothing when it already happened, and refuses
any other layout with a message saying what it found. Between the two renames of ``swap`` there
is no ``<ca>``: ``ftps_pki_ca`` refuses to create a CA while a rollover is in progress
(:func:`rollover_in_progress`), so a crash there cannot lead to a third CA.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.atomicfile import atomic_write
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.ca import CertificateAuthority
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import (
    certificate_facts,
    load_certificate,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import PKIError, utcnow

STAGES = ("trust", "reissue", "retire")
ORDER = ("none", *STAGES, "complete")
ACTIONS = ("status", "prepare", "trusted", "swap", "reissued", "retire", "retired")
STATE_VERSION = 1
ENCRYPTED_MARKERS = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")


def _now() -> str:
    return utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")


def state_path(ca_dir: str) -> str:
    return _base(ca_dir) + "-rollover.json"


def _base(ca_dir: str) -> str:
    base = os.path.normpath(os.path.abspath(ca_dir))
    if base == os.sep:
        raise PKIError("the CA directory cannot be /")
    return base


def read_state(ca_dir: str) -> dict[str, Any] | None:
    path = state_path(ca_dir)
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise PKIError(f"CA rollover state {path} is unreadable: {exc}") from exc
    if (
        not isinstance(state, dict)
        or state.get("version") != STATE_VERSION
        or state.get("stage")
        not in (
            *STAGES,
            "complete",
        )
    ):
        raise PKIError(f"CA rollover state {path} is not a version {STATE_VERSION} state file")
    return state


def rollover_in_progress(ca_dir: str) -> str:
    """The stage of an unfinished rollover of ``ca_dir`` ("" when none).

    ``ftps_pki_ca`` never creates a CA while one is in progress.
    """
    state = read_state(ca_dir)
    return "" if state is None or state["stage"] == "complete" else state["stage"]


def _cert_facts(ca: CertificateAuthority) -> dict[str, Any] | None:
    """The facts of a CA directory's certificate, None when it has none."""
    if not os.path.exists(ca.cert_path):
        return None
    with open(ca.cert_path, "rb") as handle:
        return certificate_facts(load_certificate(handle.read(), ca.cert_path))


def _write_json(path: str, data: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True).encode() + b"\n", 0o600)


def _ca_summary(ca: CertificateAuthority) -> dict[str, Any]:
    """What the status shows of one CA directory (no key material, no passphrase needed)."""
    facts = _cert_facts(ca)
    out: dict[str, Any] = {"path": ca.directory, "present": facts is not None}
    if facts is not None:
        out.update({k: facts[k] for k in ("fingerprint_sha256", "subject", "not_before", "not_after")})
        # public: what clients trust (roles/ftps_pki/tasks/trust.yml), read from the store's host
        with open(ca.cert_path, encoding="ascii") as handle:
            out["certificate"] = handle.read()
    out["key_present"] = os.path.exists(ca.key_path)
    if out["key_present"]:
        with open(ca.key_path, "rb") as handle:
            head = handle.read(4096)
        out["key_encrypted"] = any(marker in head for marker in ENCRYPTED_MARKERS)
    return out


class CARollover:
    """The rollover of the CA in ``ca_dir``: its state file and its sibling directories."""

    def __init__(self, ca_dir: str, passphrase: str = "") -> None:
        base = _base(ca_dir)
        self.base = base
        self.passphrase = passphrase
        self.active = CertificateAuthority(base)
        self.next = CertificateAuthority(base + "-next")
        self.previous = CertificateAuthority(base + "-previous")
        self.retired_root = base + "-retired"
        self.state_path = state_path(base)
        self.state = read_state(base)

    # -- reading ------------------------------------------------------------------------------

    def _fingerprint(self, ca: CertificateAuthority) -> str:
        facts = _cert_facts(ca)
        return facts["fingerprint_sha256"] if facts is not None else ""

    def _retired_dir(self) -> str:
        return os.path.join(self.retired_root, self.state["old"]["fingerprint_sha256"]) if self.state else ""

    def status(self) -> dict[str, Any]:
        state = self.state
        retired = self._retired_dir()
        return {
            "stage": state["stage"] if state else "none",
            "state_path": self.state_path,
            "state": state or {},
            "active": _ca_summary(self.active),
            "next": _ca_summary(self.next),
            "previous": _ca_summary(self.previous),
            "retired": _ca_summary(CertificateAuthority(retired)) if retired else {},
            "trust": self.trust_certificates(),
        }

    def trust_certificates(self) -> list[str]:
        """The CA certificates clients must trust now (PEM): the signing CA plus the other one in flight."""
        out = []
        for ca in (self.active, self.next, self.previous):
            if os.path.exists(ca.cert_path):
                with open(ca.cert_path, encoding="ascii") as handle:
                    out.append(handle.read())
        return out

    # -- writing the state --------------------------------------------------------------------

    def _save(self) -> None:
        if self.state is None:
            raise PKIError("no CA rollover state to save")
        self.state["updated_at"] = _now()
        _write_json(self.state_path, self.state)

    def _mark(self, stage: str, key: str) -> None:
        if self.state is None:
            raise PKIError("no CA rollover state to mark")
        self.state["stages"].setdefault(stage, {})[key] = _now()

    def _past(self, stage: str) -> bool:
        """True when the rollover has gone past ``stage`` (the step already happened: a no-op);
        False when it is at ``stage``; any earlier stage is refused before anything changes."""
        have = self.state["stage"] if self.state else "none"
        if ORDER.index(have) > ORDER.index(stage):
            return True
        if have != stage:
            raise PKIError(
                f"the CA rollover is at stage {have!r} ({self.state_path}); this step needs stage {stage!r}"
            )
        return False

    def _load(self, ca: CertificateAuthority, what: str) -> CertificateAuthority:
        try:
            return ca.load(self.passphrase)
        except PKIError as exc:
            raise PKIError(f"{what}: {exc}") from exc

    # -- the steps ----------------------------------------------------------------------------

    def prepare(
        self, key_type: str, common_name: str, validity_days: int, *, check_mode: bool = False
    ) -> bool:
        """Stage 1: make the new CA in ``<ca>-next`` and start the state. True when it changed anything."""
        if self.state is not None and self.state["stage"] != "complete":
            if self.state["stage"] == "trust":
                # resumed: the new CA must be the one the state names
                if self._fingerprint(self.next) != self.state["new"]["fingerprint_sha256"]:
                    raise PKIError(
                        f"the CA rollover's new CA ({self.state['new']['fingerprint_sha256']}) is not in "
                        f"{self.next.directory}; restore it from backup"
                    )
                self._load(self.next, "the new CA")
            return False
        old = self._load(self.active, "the current CA")
        if os.path.exists(self.next.directory) or os.path.exists(self.previous.directory):
            raise PKIError(
                f"{self.next.directory} or {self.previous.directory} exists but no rollover is in progress: "
                "move it away first (it is not the kit's)"
            )
        old_facts = certificate_facts(old.cert)
        name = common_name or f"{_cn(old.cert) or 'ftps-kit internal CA'} {utcnow():%Y-%m-%d}"
        if name == _cn(old.cert):
            raise PKIError(
                f"the new CA's name {name!r} is the current CA's: two CAs with one subject confuse path "
                "building; choose another common name"
            )
        if check_mode:
            return True
        if self.state is not None:  # a finished rollover: keep its record beside the retired CA
            os.makedirs(self.retired_root, mode=0o700, exist_ok=True)
            _write_json(os.path.join(self.retired_root, f"rollover-{self.state['id']}.json"), self.state)
        self.next.create(key_type, name, validity_days, self.passphrase)
        new_facts = certificate_facts(self.next.cert)
        keep = ("fingerprint_sha256", "subject", "not_after")
        self.state = {
            "version": STATE_VERSION,
            "id": f"{utcnow():%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}",
            "stage": "trust",
            "old": {k: old_facts[k] for k in keep},
            "new": {k: new_facts[k] for k in keep},
            "stages": {},
        }
        self._mark("trust", "started_at")
        self._save()
        return True

    def trusted(self, *, check_mode: bool = False) -> bool:
        """Stage 1 done: every client trusts old + new (the playbook checked it)."""
        if self._past("trust"):
            return False
        if check_mode:
            return True
        self._mark("trust", "done_at")
        self.state["stage"] = "reissue"
        self._save()
        return True

    def _layout(self) -> str:
        """Where the swap stands: before, half (between the renames), after, or unknown."""
        old, new = self.state["old"]["fingerprint_sha256"], self.state["new"]["fingerprint_sha256"]
        a, n, p = (
            self._fingerprint(self.active),
            self._fingerprint(self.next),
            self._fingerprint(self.previous),
        )
        if (a, n, p) == (old, new, ""):
            return "before"
        if (a, n, p) == ("", new, old):
            return "half"
        if (a, n, p) == (new, "", old):
            return "after"
        return f"unknown (signing: {a or 'none'}, next: {n or 'none'}, previous: {p or 'none'})"

    def swap(self, *, check_mode: bool = False) -> bool:
        """Stage 2 begins: the new CA signs from now on; the old one waits in ``<ca>-previous``."""
        if self._past("reissue"):
            return False
        layout = self._layout()
        if layout == "after":
            if "swapped_at" not in self.state["stages"].get("reissue", {}):
                self._mark("reissue", "swapped_at")
                self._save()
            return False
        if layout not in ("before", "half"):
            raise PKIError(f"cannot swap the CAs: the directories are in an unexpected state, {layout}")
        # both keys must open with the passphrase before anything moves
        if layout == "before":
            self._load(self.active, "the current CA")
        else:
            self._load(self.previous, "the old CA")
        self._load(self.next, "the new CA")
        if check_mode:
            return True
        if layout == "before":
            os.rename(self.active.directory, self.previous.directory)
        os.rename(self.next.directory, self.active.directory)
        _fsync_dir(os.path.dirname(self.base))
        self._mark("reissue", "swapped_at")
        self._save()
        return True

    def reissued(self, *, check_mode: bool = False) -> bool:
        """Stage 2 done: every internal-CA server has a certificate from the new CA."""
        if self._past("reissue"):
            return False
        if self._layout() != "after":
            raise PKIError(f"the CAs were not swapped yet ({self._layout()}): run the swap first")
        if check_mode:
            return True
        self._mark("reissue", "done_at")
        self.state["stage"] = "retire"
        self._save()
        return True

    def retire(self, *, check_mode: bool = False) -> bool:
        """Stage 3: the old CA leaves the signing side: certificate archived, key deleted."""
        if self._past("retire"):
            return False
        target = self._retired_dir()
        key = os.path.join(target, "ca.key")
        if os.path.exists(self.previous.directory):
            if self._fingerprint(self.previous) != self.state["old"]["fingerprint_sha256"]:
                raise PKIError(f"{self.previous.directory} does not hold the old CA the state names")
            if os.path.exists(target):
                raise PKIError(f"{target} exists already; move it away")
            if check_mode:
                return True
            os.makedirs(self.retired_root, mode=0o700, exist_ok=True)
            os.rename(self.previous.directory, target)
            _fsync_dir(self.retired_root)
        elif not os.path.exists(key):
            return False
        if check_mode:
            return True
        # Unlinking is what a file system offers: no promise about blocks on a journaling or
        # copy-on-write file system (docs/ca-rollover.md says so).
        os.unlink(key)
        _fsync_dir(target)
        self._mark("retire", "old_key_deleted_at")
        self._save()
        return True

    def retired(self, *, check_mode: bool = False) -> bool:
        """Stage 3 done: no client trusts the old CA any more (the playbook checked it)."""
        if self._past("retire"):
            return False
        if os.path.exists(self.previous.directory) or os.path.exists(
            os.path.join(self._retired_dir(), "ca.key")
        ):
            raise PKIError("the old CA's key is still there: run the retire step first")
        if check_mode:
            return True
        self._mark("retire", "done_at")
        self.state["stage"] = "complete"
        self._save()
        return True


def _cn(cert: Any) -> str:
    for attribute in cert.subject:
        if attribute.oid.dotted_string == "2.5.4.3":  # commonName
            return str(attribute.value)
    return ""


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def run(
    action: str,
    ca_dir: str,
    passphrase: str,
    *,
    key_type: str = "ecdsa-p384",
    common_name: str = "",
    validity_days: int = 3650,
    check_mode: bool = False,
) -> dict[str, Any]:
    """One step; returns ``changed`` and the status after it."""
    if action not in ACTIONS:
        raise PKIError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    rollover = CARollover(ca_dir, passphrase)
    changed = False
    if action == "prepare":
        changed = rollover.prepare(key_type, common_name, validity_days, check_mode=check_mode)
    elif action != "status":
        changed = getattr(rollover, action)(check_mode=check_mode)
    return {"changed": changed, **rollover.status()}
