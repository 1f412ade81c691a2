"""Shared pytest setup: this checkout is the collection ftpskit.ftps, imported as Ansible does."""

from __future__ import annotations

import sys

from tests.paths import ROOT

# `make collection-link` makes .cache/collections/ansible_collections/ftpskit/ftps a link to the
# checkout; the same link here (relative, so a moved checkout keeps it) lets `pytest` run without
# make. With .cache/collections on sys.path, `from ansible_collections.ftpskit.ftps.plugins.
# module_utils.pki.keys import ...` resolves to plugins/module_utils/pki/keys.py, the name the
# modules use on a host. `ansible_collections` is a namespace package: the `ansible` package's
# collections in site-packages stay importable beside it.
COLLECTIONS = ROOT / ".cache" / "collections"
_LINK = COLLECTIONS / "ansible_collections" / "ftpskit" / "ftps"
if not _LINK.is_symlink():
    _LINK.parent.mkdir(parents=True, exist_ok=True)
    _LINK.symlink_to("../../../..")
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
