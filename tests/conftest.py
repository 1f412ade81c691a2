"""Shared pytest setup: import our module_utils the way Ansible does on a host."""

from __future__ import annotations

import pathlib

import ansible.module_utils

ROOT = pathlib.Path(__file__).resolve().parent.parent

# `from ansible.module_utils.ftps_pki import ...` resolves to module_utils/ftps_pki.py, as it
# does when Ansible ships a module to a host.
_MODULE_UTILS = str(ROOT / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)
