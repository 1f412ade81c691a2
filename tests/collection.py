"""The kit's plugins as the collection ``ftpskit.ftps`` imports them, for tests without Ansible.

``from tests.collection import acme, http01, pki`` works from a plain checkout: when no
``ansible_collections.ftpskit.ftps`` is importable, the package is mapped onto this repository
(its ``plugins/`` directory is the collection's).
"""

from __future__ import annotations

import importlib
import pathlib
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _map_collection() -> None:
    try:
        importlib.import_module("ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_pki_acme")
        return
    except ImportError:
        pass
    for name, path in (
        ("ansible_collections", None),
        ("ansible_collections.ftpskit", None),
        ("ansible_collections.ftpskit.ftps", str(ROOT)),
    ):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = importlib.import_module(name)
            except ImportError:
                module = types.ModuleType(name)
                module.__path__ = []
                sys.modules[name] = module
        if path is not None and path not in list(module.__path__):
            module.__path__ = [path, *module.__path__]


_map_collection()

from ansible_collections.ftpskit.ftps.plugins.module_utils import (  # noqa: E402
    ftps_pki_acme as acme,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils import (  # noqa: E402
    ftps_pki_acme_http01 as http01,
)

try:
    from ansible_collections.ftpskit.ftps.plugins.module_utils import ftps_pki as pki
except ImportError:  # before the collection layout: module_utils/ at the top
    from ansible.module_utils import ftps_pki as pki  # type: ignore[no-redef]

__all__ = ["acme", "http01", "pki"]
