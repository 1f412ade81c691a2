# Copyright: ftps-kit contributors
# MIT License
"""Whether this run is one slice of an AWX sliced job: the one definition of that test.

``hostvars[inventory_hostname] | ftpskit.ftps.ftps_awx_slice``: true when the run's variables say
it is one slice. AWX passes no slice number or count to the playbook; a slice job is recognised by
what AWX does pass (awx/main/models/unified_jobs.py ``awx_meta_vars``, workflow.py): it runs in a
workflow (``awx_job_launch_type`` ``workflow``) that AWX made from the job template itself, so the
workflow job bears the template's name. The slicing guard (ftps_fleet's entry point unsliced) refuses a
slice; report.yml, which may run sliced, keeps the stored rows of servers outside its slice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError


def awx_slice(run_vars: Mapping[str, Any]) -> bool:
    """The test itself, on the run's variables (a host's ``hostvars`` entry or a plain dict)."""
    launch = run_vars.get("awx_job_launch_type") or ""
    workflow = run_vars.get("awx_workflow_job_name") or ""
    template = run_vars.get("awx_job_template_name") or ""
    return launch == "workflow" and len(workflow) > 0 and workflow == template


def ftps_awx_slice(run_vars: Any) -> bool:
    if not isinstance(run_vars, Mapping):
        raise AnsibleFilterError("ftps_awx_slice: pass hostvars[inventory_hostname] (the run's variables)")
    return awx_slice(run_vars)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"ftps_awx_slice": ftps_awx_slice}
