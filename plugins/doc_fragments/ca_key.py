# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Documentation fragment: the passphrase of a CA key the module opens or makes (ftps_pki_ca,
ftps_pki_ca_rollover, ftps_pki_sign, ftps_pki_client_sign, ftps_pki_client_crl), and where such a
module runs (the CA key never leaves the kit's store); its argument spec is pki/ca.py's
CA_KEY_ARGUMENT_SPEC (no_log)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  passphrase:
    description: Passphrase of the CA key (empty for none). Keep it in a vault.
    type: str
    default: ""
notes:
  - Run it on the host of the kit's store (C(delegate_to) the key manager or localhost, C(run_once=true));
    the CA key never leaves that host.
"""
