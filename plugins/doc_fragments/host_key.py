# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Documentation fragment: the type of a key a module makes on the managed host (a server's
key in ftps_pki_request, a client's in ftps_pki_client_cert); its argument spec is
pki/keys.py's KEY_TYPE_ARGUMENT_SPEC."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  key_type:
    description: Type of a new key made on the host (the key never leaves it).
    type: str
    choices: [ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096]
    default: ecdsa-p256
"""
