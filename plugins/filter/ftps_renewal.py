# Copyright: ftps-kit contributors
# MIT License
"""``value | ftpskit.ftps.ftps_renew_window_problem``: what is wrong with the renewal window (days),
or "" when nothing.

The rule is ``ftpskit_common.layout.renew_before_days_problem`` (plugins/module_utils/ftpskit_common),
the function ftpsd's config check applies to ``tls.renew_before_days``; ftps_pki's preflight calls
it on the controller before anything changes. Digit strings count as their integers, as the roles'
``| int`` reads them.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.layout import (
    renew_before_days_problem,
)
from ansible_collections.ftpskit.ftps.plugins.plugin_utils.role_values import as_role_int


def ftps_renew_window_problem(value: Any) -> str:
    return renew_before_days_problem(as_role_int(value))


class FilterModule:
    def filters(self) -> dict:
        return {"ftps_renew_window_problem": ftps_renew_window_problem}
