# Copyright: ftps-kit contributors
# MIT License
"""Filters for playbooks/rotate.yml; the logic is plugins/module_utils/ftps_rotation.py.

``steps | ftpskit.ftps.ftps_rotation_result``: a server's result from its steps (``rotated``,
``rolled_back``, ``failed``, ``failed_rollback``, ``unreachable``).

``steps | ftpskit.ftps.ftps_rotation_problems``: every error of those steps, in order.

``run | ftpskit.ftps.ftps_rotation_record(servers=..., selected=..., skipped=..., unusable=...,
hosts=..., updated_at=..., finished=false)``: the run's record (docs/rotation.md).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_rotation import (
    RotationError,
    build_record,
    host_problems,
    host_result,
)


def ftps_rotation_result(steps: list, check_mode: bool = False) -> str:
    try:
        return host_result(steps, bool(check_mode))
    except RotationError as err:
        raise AnsibleFilterError(f"ftps_rotation_result: {err}") from err


def ftps_rotation_problems(steps: list) -> list[str]:
    try:
        return host_problems(steps)
    except RotationError as err:
        raise AnsibleFilterError(f"ftps_rotation_problems: {err}") from err


def ftps_rotation_record(run: dict, **kwargs: Any) -> dict:
    try:
        return build_record(run, **kwargs)
    except (RotationError, KeyError, TypeError, ValueError) as err:
        raise AnsibleFilterError(f"ftps_rotation_record: {err}") from err


class FilterModule:
    def filters(self) -> dict:
        return {
            "ftps_rotation_result": ftps_rotation_result,
            "ftps_rotation_problems": ftps_rotation_problems,
            "ftps_rotation_record": ftps_rotation_record,
        }
