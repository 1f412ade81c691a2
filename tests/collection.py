"""The kit's module_utils for the acme tests, under the names the modules import them by.

tests/conftest.py makes this checkout importable as the collection ``ftpskit.ftps``.
"""

from __future__ import annotations

from ansible_collections.ftpskit.ftps.plugins.module_utils.pki import acme
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki import acme_http01 as http01

__all__ = ["acme", "http01"]
