# Copyright: ftps-kit contributors
# MIT License
"""``ftps_users_accounts | ftpskit.ftps.ftps_users_problems(home_root, variable)``: every problem
with the wanted accounts, as sentences naming ``variable[index]`` and never a password or hash.

The rules are ``ftpskit_common.accounts.check_accounts`` (plugins/module_utils/ftpskit_common),
the same function the ``ftpskit.ftps.ftps_users`` module checks with on the host and the rules
the daemon applies to its users file; the role's preflight (and so ``site.yml``'s) calls it on the
controller before anything changes. ``home_root``: an account without ``home`` gets
``<home_root>/<name>``, as the role does.
"""

from __future__ import annotations

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.accounts import check_accounts


def ftps_users_problems(
    accounts: list, home_root: str | None = None, variable: str = "ftps_users_accounts"
) -> list[str]:
    return check_accounts(
        accounts, variable=str(variable), home_root=None if home_root is None else str(home_root)
    )


class FilterModule:
    def filters(self) -> dict:
        return {"ftps_users_problems": ftps_users_problems}
