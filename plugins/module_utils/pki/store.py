# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""The generation store on a server: generation directories, the ``current``/``previous``/
``pending``/``next`` links and files.

Layout on a server (docs/design.md)::

    <pki_dir>/gen-<UTC timestamp>-<serial hex>/{cert,key,chain,fullchain}.pem
    <pki_dir>/current  -> gen-...   (atomically swapped by rename of a new symlink)
    <pki_dir>/previous -> gen-...   (kept for rollback)
    <pki_dir>/pending/{key,csr}.pem (a key made for a CSR that is not signed yet; never served)
    <pki_dir>/next/key.pem          (the key of the next rotation, made ahead of time so its SPKI
                                     pin reaches the clients before it is served: RFC 7671 8.1)
"""

from __future__ import annotations

import contextlib
import grp
import os
import secrets
import shutil
import tempfile
from typing import Any

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.atomicfile import atomic_write
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.layout import (
    CERT_NAME,
    CHAIN_NAME,
    CURRENT,
    FULLCHAIN_NAME,
    KEY_NAME,
    NEXT,
    PENDING,
    PKI_DIR,
    PREVIOUS,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import (
    cert_to_pem,
    certificate_facts,
    load_certificate,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import (
    key_to_pem,
    load_private_key,
    spki_pin,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import (
    PKIError,
    read_if_exists,
    read_parsed,
    utcnow,
)

# Without cryptography, support.HAS_CRYPTOGRAPHY says so and the modules fail before using it.
with contextlib.suppress(ImportError):
    from cryptography import x509


GEN_PREFIX = "gen-"


def group_id(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError as exc:
        raise PKIError(f"group {name!r} does not exist (the role creates it; run it first)") from exc


# The options of the modules that work on a server's generation store (ftps_pki_request,
# ftps_pki_install, ftps_pki_generation); their documentation is the doc fragment
# ftpskit.ftps.generations.
STORE_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "pki_dir": {"type": "path", "default": PKI_DIR},  # ftpskit_common.layout, the one spelling
    "group": {"type": "str", "default": "ftpsd"},
}


class Store:
    """The generation directories and ``current``/``previous`` symlinks on a server."""

    def __init__(self, root: str, group: str = "ftpsd") -> None:
        self.root = root
        self.group = group

    # reading --------------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def generation(self, link: str = CURRENT) -> str | None:
        target = self.path(link)
        if not os.path.islink(target):
            return None
        resolved = os.path.realpath(target)
        return resolved if os.path.isdir(resolved) else None

    def current_cert(self) -> x509.Certificate | None:
        gen = self.generation()
        return read_parsed(os.path.join(gen, CERT_NAME) if gen else None, load_certificate)

    def current_key(self) -> Any:
        gen = self.generation()
        return read_parsed(os.path.join(gen, KEY_NAME) if gen else None, load_private_key)

    def current_chain_pem(self) -> str:
        gen = self.generation()
        data = read_if_exists(os.path.join(gen, CHAIN_NAME)) if gen else None
        return data.decode() if data else ""

    def pending_key(self) -> Any:
        return read_parsed(self.path(PENDING, KEY_NAME), load_private_key)

    def pending_csr_pem(self) -> str:
        data = read_if_exists(self.path(PENDING, "csr.pem"))
        return data.decode() if data else ""

    def next_key(self) -> Any:
        return read_parsed(self.path(NEXT, KEY_NAME), load_private_key)

    def paths(self) -> dict[str, str]:
        current = self.path(CURRENT)
        return {
            "dir": self.root,
            "current": current,
            "generation": self.generation() or "",
            "previous": self.generation(PREVIOUS) or "",
            "cert": os.path.join(current, CERT_NAME),
            "key": os.path.join(current, KEY_NAME),
            "chain": os.path.join(current, CHAIN_NAME),
            "fullchain": os.path.join(current, FULLCHAIN_NAME),
        }

    def facts(self) -> dict[str, Any]:
        """The current certificate's facts, plus ``next_spki_sha256`` when a next key exists."""
        cert = self.current_cert()
        if cert is None:
            return {}
        facts = certificate_facts(cert, self.paths())
        nxt = self.next_key()
        if nxt is not None:
            facts["next_spki_sha256"] = spki_pin(nxt.public_key())
        return facts

    # writing --------------------------------------------------------------------------------
    def ensure_root(self) -> None:
        gid = group_id(self.group)
        os.makedirs(self.root, mode=0o750, exist_ok=True)
        os.chown(self.root, 0, gid)
        os.chmod(self.root, 0o750)  # noqa: S103 - the daemon's group must traverse to its key

    def stage_pending(self, key: Any, csr_pem: str) -> None:
        """Keep a new key and its CSR until the certificate arrives (root only, never served)."""
        self.ensure_root()
        pending = self.path(PENDING)
        os.makedirs(pending, mode=0o700, exist_ok=True)
        os.chmod(pending, 0o700)
        atomic_write(os.path.join(pending, KEY_NAME), key_to_pem(key), 0o600)
        atomic_write(os.path.join(pending, "csr.pem"), csr_pem.encode(), 0o644)

    def stage_next(self, key: Any) -> None:
        """Keep the next rotation's key (root only, never served until a rotation uses it)."""
        self.ensure_root()
        directory = self.path(NEXT)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
        atomic_write(os.path.join(directory, KEY_NAME), key_to_pem(key), 0o600)

    def clear_next(self) -> None:
        shutil.rmtree(self.path(NEXT), ignore_errors=True)

    def clear_pending(self) -> None:
        shutil.rmtree(self.path(PENDING), ignore_errors=True)

    def install(self, cert: x509.Certificate, key: Any, chain: list[x509.Certificate]) -> str:
        """Write a complete new generation, then swap ``current`` (and ``previous``) atomically."""
        self.ensure_root()
        gid = group_id(self.group)
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        name = f"{GEN_PREFIX}{stamp}-{cert.serial_number:x}"
        final = self.path(name)
        staging = tempfile.mkdtemp(prefix=".gen-", dir=self.root)
        try:
            cert_pem = cert_to_pem(cert).encode()
            chain_pem = "".join(cert_to_pem(c) for c in chain).encode()
            atomic_write(os.path.join(staging, CERT_NAME), cert_pem, 0o644)
            atomic_write(os.path.join(staging, CHAIN_NAME), chain_pem, 0o644)
            atomic_write(os.path.join(staging, FULLCHAIN_NAME), cert_pem + chain_pem, 0o644)
            atomic_write(os.path.join(staging, KEY_NAME), key_to_pem(key), 0o640, gid)
            os.chown(staging, 0, gid)
            os.chmod(staging, 0o750)  # noqa: S103 - the daemon's group reads the key (0640) inside
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        old = self.generation(CURRENT)
        if old is not None:
            self._swap_link(PREVIOUS, os.path.basename(old))
        self._swap_link(CURRENT, name)
        self._prune()
        return final

    def _swap_link(self, link: str, target: str) -> None:
        tmp = self.path(f".{link}.{secrets.token_hex(4)}")
        os.symlink(target, tmp)
        os.replace(tmp, self.path(link))

    def rollback(self) -> str:
        """Point ``current`` back at ``previous`` and ``previous`` at the generation it replaced.

        Both generations stay (the replaced one for inspection); the swap is two atomic renames,
        ``current`` last, so the daemon never finds it missing.
        """
        old, new = self.generation(PREVIOUS), self.generation(CURRENT)
        if old is None or new is None:
            raise PKIError(f"no previous generation in {self.root} to go back to")
        self._swap_link(PREVIOUS, os.path.basename(new))
        self._swap_link(CURRENT, os.path.basename(old))
        return old

    def _prune(self) -> None:
        keep = {self.generation(CURRENT), self.generation(PREVIOUS)}
        for entry in os.listdir(self.root):
            full = self.path(entry)
            stale_tmp = entry.startswith(".gen-")
            if (entry.startswith(GEN_PREFIX) or stale_tmp) and os.path.realpath(full) not in keep:
                shutil.rmtree(full, ignore_errors=True)
