"""ftpskit_common: the code the daemon, the collection's modules and client hosts share.

Standard library only, relative imports only, so the one copy in the collection
(``plugins/module_utils/ftpskit_common/``) works three ways: Ansible's module finder ships it to
hosts with the modules that import it (``ansible_collections.ftpskit.ftps.plugins.module_utils.
ftpskit_common.client``), the daemon imports it as the top-level package ``ftpskit_common`` from
the ``ftpskit-common`` wheel (``src/common/pyproject.toml``), and client hosts install only that
wheel for ``ftps-trust``.

- :mod:`.atomicfile`: the one atomic file writer.
- :mod:`.x509`: the X.509 reader, the one fingerprint format, SPKI pins.
- :mod:`.sans`: a host's identity read on it, its intended SAN set, the one SAN comparison.
- :mod:`.ports`: the one port-range rule (the passive range, firewall ranges).
- :mod:`.accounts`: the one set of account rules (user names, homes, permissions, limits).
- :mod:`.passwd`: password hashing and the daemon's users file.
- :mod:`.client`: the session-reusing FTPS client, the probe, the pin store.
- :mod:`.trust`: the ``ftps-trust`` command.
- :mod:`.certreq`: the ``ftps-cert`` command (a person's client-certificate key, CSR, install).
"""

__version__ = "0.1.0"
