# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""The fleet's key manager, one file per concern (the ``ftps_pki_*`` modules are thin over these).

Every decision of the ``ftps_pki`` modules lives here so the unit tests can exercise it without
Ansible. The files run on the controller (CA, batched signing, ACME, rollover) *and* on the
servers (keys, CSRs, installation), so they must work with the oldest ``cryptography`` a
supported host ships (Debian 12: 38.0.4) and the standard library only otherwise.

- ``support``: the cryptography import guard (``HAS_CRYPTOGRAPHY``), ``PKIError``, time, serials
- ``keys``: key types, generation, PEM, SPKI pins
- ``sans``: subject alternative names and their coverage
- ``certs``: certificates, CSRs, chains, trust anchors, certificate facts
- ``ca``: the controller's internal CA and batched signing
- ``renewal``: when a certificate must be re-issued
- ``store``: a server's generation directories and links
- ``steps``: the host-side steps (request, install, next key, rollback, problems)
- ``rollover``: the staged CA rollover; ``ca_guard``: the accidental-second-CA guard
- ``acme``, ``acme_http01``: ACME issuance on the controller, the http-01 responder on a server
"""
