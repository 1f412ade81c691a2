# Copyright: ftps-kit contributors
# MIT License
"""The SAN comparison for playbooks (the rotation gate, site.yml's proof); the logic is
plugins/module_utils/ftpskit_common/sans.py, which the report uses too.

``served_sans | ftpskit.ftps.ftps_san_mismatch(intended_sans)``: '' when the certificate's SANs
(as ftps_probe or ftps_pki report them) are exactly the host's intended set
(``ftps_pki_intended_sans``, from ftps_pki's ``identity`` entry point), else a sentence naming
what is missing and what does not belong.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.sans import san_mismatch


def ftps_san_mismatch(served: list, intended: list) -> str:
    if not isinstance(served, list) or not isinstance(intended, list):
        raise AnsibleFilterError("ftps_san_mismatch: both the served and the intended SANs must be lists")
    try:
        return san_mismatch(served, intended)
    except ValueError as err:
        raise AnsibleFilterError(f"ftps_san_mismatch: {err}") from err


class FilterModule:
    def filters(self) -> dict:
        return {"ftps_san_mismatch": ftps_san_mismatch}
