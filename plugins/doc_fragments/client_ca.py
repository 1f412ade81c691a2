# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Documentation fragment: the client CA's directory in the kit's store, the option every module
that reads or signs with the client CA takes (ftps_pki_client_sign, ftps_pki_client_crl,
ftps_pki_client_report); its argument spec is pki/client.py's CLIENT_CA_ARGUMENT_SPEC."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  path:
    description: Directory of the client CA (C(ca.pem), C(ca.key)), made by M(ftpskit.ftps.ftps_pki_ca).
    type: path
    required: true
"""
