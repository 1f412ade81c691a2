# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Documentation fragment: where a server's certificate generations live and who may read them
(ftps_pki_request, ftps_pki_install, ftps_pki_generation)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  pki_dir:
    description: Root of the certificate generations.
    type: path
    default: /etc/ftps-kit/pki
  group:
    description: The daemon's group; it owns the generation directories and can read the served key.
    type: str
    default: ftpsd
"""
