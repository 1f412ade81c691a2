# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Documentation fragment: how a new internal CA is made (ftps_pki_ca on first use,
ftps_pki_ca_rollover when it prepares the next CA)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  key_type:
    description: Key type for a new CA.
    type: str
    choices: [ecdsa-p384, ecdsa-p256, rsa-4096, rsa-3072]
    default: ecdsa-p384
  validity_days:
    description: Validity of a new CA certificate, in days.
    type: int
    default: 3650
"""
