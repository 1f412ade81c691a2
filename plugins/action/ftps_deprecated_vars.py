# Copyright: ftps-kit contributors
# MIT License
"""Action plugin ftps_deprecated_vars: a real Ansible deprecation warning for each deprecated
variable name in use (the documentation is plugins/modules/ftps_deprecated_vars.py)."""

from __future__ import annotations

from collections.abc import Container, Mapping

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

COLLECTION = "ftpskit.ftps"


def deprecated_in_use(aliases: Mapping[str, str], defined: Container[str]) -> list[str]:
    """The deprecated names of ``aliases`` (old name -> what replaces it) that are ``defined``,
    in the map's order."""
    return [old for old in aliases if old in defined]


def deprecation_message(old: str, new: str, see: str = "") -> str:
    """The warning's text (Ansible adds when it goes: "This feature will be removed from
    collection 'ftpskit.ftps' version X.")."""
    return f"The variable {old} is deprecated: use {new} instead" + (f" ({see})" if see else "")


class ActionModule(ActionBase):
    """Warn once per run about every deprecated name in use; changes nothing, contacts no host."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("aliases", "version", "see"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self._task.args
        aliases = args.get("aliases")
        version = str(args.get("version") or "")
        see = str(args.get("see") or "")
        if not isinstance(aliases, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()
        ):
            raise AnsibleActionFail(
                "aliases must be a mapping of deprecated variable names to what replaces them"
            )
        if not version:
            raise AnsibleActionFail(
                "version (the collection version that removes the deprecated names) is required"
            )
        in_use = deprecated_in_use(aliases, task_vars or {})
        for old in in_use:
            # Ansible shows each message once per run, however many hosts or includes warn.
            display.deprecated(
                msg=deprecation_message(old, aliases[old], see),
                version=version,
                collection_name=COLLECTION,
            )
        result.update(changed=False, deprecated=in_use)
        return result
