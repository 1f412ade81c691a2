#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License
"""Ansible module ftps_report_rows: keep report.yml's rows in the kit's store, read them all."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ftps_report_rows
short_description: Store this run's certificate report rows and return every stored row
description:
  - Writes each row of O(rows) to C(<dir>/rows/<host>.json) (atomically, one file per server) with
    the time O(observed), then returns every row stored in O(dir), this run's and earlier runs'.
  - Used by C(playbooks/report.yml) on the kit's store host (the key manager or the controller),
    so that the runs of a sliced job each add their servers and the last one to finish writes the
    whole fleet's report (docs/report.md, "One report across slices").
options:
  dir:
    description: The report directory in the kit's store.
    type: path
    required: true
  rows:
    description: This run's rows (C(ftpskit.ftps.ftps_report)'s C(hosts)); each needs C(host).
    type: list
    elements: dict
    default: []
  observed:
    description: When this run read its servers (UTC, C(YYYY-MM-DDTHH:MM:SSZ)).
    type: str
    required: true
attributes:
  check_mode:
    support: none
    description: The rows are the run's output, written in check mode too (report.yml sets check_mode false).
  diff_mode:
    support: none
    description: Returns no diff.
notes:
  - Never reports C(changed); the rows are a report's output, not state of the fleet.
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Store this run's rows and read every row
  ftpskit.ftps.ftps_report_rows:
    dir: /var/lib/ftps-kit/reports
    rows: "{{ report.hosts }}"
    observed: "{{ report.generated }}"
  register: stored
"""

RETURN = r"""
stored:
  description: Every stored row, sorted by host, each C({host, observed, row}).
  returned: success
  type: list
  elements: dict
unreadable:
  description: A sentence per row file that could not be read (skipped).
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_report_rows import (
    RowsError,
    read_rows,
    write_rows,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dir": {"type": "path", "required": True},
            "rows": {"type": "list", "elements": "dict", "default": []},
            "observed": {"type": "str", "required": True},
        },
        supports_check_mode=False,
    )
    p = module.params
    try:
        write_rows(p["dir"], p["rows"], p["observed"])
        stored, unreadable = read_rows(p["dir"])
    except (RowsError, OSError) as exc:
        module.fail_json(msg=str(exc))
    for sentence in unreadable:
        module.warn(f"report row skipped: {sentence}")
    module.exit_json(changed=False, stored=stored, unreadable=unreadable)


if __name__ == "__main__":
    main()
