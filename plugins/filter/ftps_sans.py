# Copyright: ftps-kit contributors
# MIT License
"""The SAN comparison for playbooks (the rotation gate, site.yml's proof); the logic is
plugins/module_utils/ftpskit_common/sans.py, which the report uses too.

``served_sans | ftpskit.ftps.ftps_san_mismatch(intended_sans)``: '' when the certificate's SANs
(as ftps_probe or ftps_pki report them) are exactly the host's intended set
(``ftps_pki_intended_sans``, from ftps_pki's ``identity`` entry point), else a sentence naming
what is missing and what does not belong.

``inventory_hostname | ftpskit.ftps.ftps_declared_sans(hostname_enabled, extra_sans)``: the part
of the intended set the inventory alone decides (the inventory name, ``ftps_pki_extra_sans``),
with the same rules and spelling as on the host; the controller-only preflight
(playbooks/preflight.yml) uses it, as it never reads a host's FQDN or addresses.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.sans import (
    intended_sans,
    san_mismatch,
)


def ftps_san_mismatch(served: list, intended: list) -> str:
    if not isinstance(served, list) or not isinstance(intended, list):
        raise AnsibleFilterError("ftps_san_mismatch: both the served and the intended SANs must be lists")
    try:
        return san_mismatch(served, intended)
    except ValueError as err:
        raise AnsibleFilterError(f"ftps_san_mismatch: {err}") from err


def ftps_declared_sans(inventory_name: str, hostname_enabled: bool, extra_sans: list) -> list[str]:
    if not isinstance(extra_sans, list):
        raise AnsibleFilterError("ftps_pki_extra_sans must be a list of DNS names or IP addresses")
    try:
        return intended_sans(
            str(inventory_name),
            {},
            hostname_enabled=bool(hostname_enabled),
            fqdn_enabled=False,
            addresses_enabled=False,
            extra_sans=extra_sans,
        )
    except ValueError as err:
        raise AnsibleFilterError(f"ftps_pki_extra_sans (or the inventory name): {err}") from err


class FilterModule:
    def filters(self) -> dict:
        return {"ftps_san_mismatch": ftps_san_mismatch, "ftps_declared_sans": ftps_declared_sans}
