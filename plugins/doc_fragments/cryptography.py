# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Documentation fragment: the cryptography requirement of the modules that handle keys and
certificates (the CA's on the kit's store, a server's on the managed host)."""


class ModuleDocFragment:
    # Runs on the host of the kit's store (the key manager or the controller).
    DOCUMENTATION = r"""
options: {}
requirements:
  - cryptography >= 38
"""

    # Runs on the managed server.
    MANAGED_HOST = r"""
options: {}
requirements:
  - cryptography >= 38 on the managed host (Debian package python3-cryptography)
"""
