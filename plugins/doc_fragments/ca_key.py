# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Documentation fragment: the passphrase of a CA key the module opens or makes (ftps_pki_ca,
ftps_pki_ca_rollover, ftps_pki_sign, ftps_pki_client_sign, ftps_pki_client_crl); its argument
spec is pki/ca.py's CA_KEY_ARGUMENT_SPEC (no_log)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  passphrase:
    description: Passphrase of the CA key (empty for none). Keep it in a vault.
    type: str
    default: ""
"""
