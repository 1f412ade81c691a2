#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Ansible module: the client certificates the client CA issued, for the fleet report and metrics."""

DOCUMENTATION = r"""
---
module: ftps_pki_client_report
short_description: List the client certificates of the ftps-kit client CA, with expiry and revocation
description:
  - Reads the client CA's records in the kit's store (C(<path>/issued/), C(revoked.json), C(crl.pem))
    and returns one row per certificate - who, serial, fingerprint, expiry, days left, revoked.
  - With O(metrics_file), writes the expiry of every unexpired certificate and the CRL's nextUpdate
    as a Prometheus textfile (node_exporter's textfile collector), atomically.
  - Reads only the store; never needs the CA key. Run it on the store's host.
extends_documentation_fragment:
  - ftpskit.ftps.client_ca
  - ftpskit.ftps.cryptography
options:
  metrics_file:
    description: Where to write the Prometheus textfile ("" = none).
    type: path
    default: ""
  warn_days:
    description: RV(table) flags certificates with fewer days left than this.
    type: int
    default: 30
attributes:
  check_mode:
    support: none
    description: >-
      The rows and the textfile are the run's output, not state (report.yml sets check_mode false).
  diff_mode:
    support: none
    description: Returns no diff.
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: List the client certificates
  ftpskit.ftps.ftps_pki_client_report:
    path: /var/lib/ftps-kit/client-ca
    metrics_file: /var/lib/ftps-kit/reports/client-certificates.prom
  delegate_to: "{{ groups['ftps_ca'] | first }}"
  run_once: true
"""

RETURN = r"""
present:
  description: Whether the store holds a client CA.
  returned: always
  type: bool
  sample: true
certificates:
  description: One row per issued certificate, sorted by identity and expiry.
  returned: always
  type: list
  elements: dict
  sample: [{"identity": "alice@example.org", "serial": "5f3a...", "not_after": "2027-01-05T00:00:00Z",
            "days_remaining": 29, "expired": false, "revoked": true, "revoked_at": "2026-12-06T23:00:00Z"}]
table:
  description: One line per certificate - identity, serial, expiry, and ok / EXPIRING / expired / REVOKED.
  returned: always
  type: list
  elements: str
  sample: ["  alice@example.org   serial 5f3a...   until 2027-01-05T00:00:00Z  REVOKED 2026-12-06T23:00:00Z"]
crl_next_update:
  description: The CRL's nextUpdate ("" when there is no CRL).
  returned: always
  type: str
  sample: "2026-12-13T00:00:00Z"
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.atomicfile import atomic_write
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.layout import RENEW_BEFORE_DAYS
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.client import (
    CLIENT_CA_ARGUMENT_SPEC,
    ClientCA,
    crl_next_update_time,
    render_lines,
    render_prometheus,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import (
    PKIError,
    iso_utc,
    require_cryptography,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **CLIENT_CA_ARGUMENT_SPEC,
            "metrics_file": {"type": "path", "default": ""},
            "warn_days": {"type": "int", "default": RENEW_BEFORE_DAYS},
        },
        supports_check_mode=False,
    )
    require_cryptography(module)
    params = module.params
    store = ClientCA(params["path"])
    if not store.ca.exists():
        module.exit_json(changed=False, present=False, certificates=[], table=[], crl_next_update="")
    try:
        rows = store.inventory()
    except PKIError as exc:
        module.fail_json(msg=f"client CA in {params['path']}: {exc}")
    crl = store.current_crl()
    next_update = crl_next_update_time(crl) if crl is not None else None
    next_update_text = iso_utc(next_update) if next_update else ""
    if params["metrics_file"]:
        os.makedirs(os.path.dirname(params["metrics_file"]) or ".", exist_ok=True)
        atomic_write(params["metrics_file"], render_prometheus(rows, next_update_text).encode(), 0o644)
    module.exit_json(
        changed=False,
        present=True,
        certificates=rows,
        table=render_lines(rows, params["warn_days"]),
        crl_next_update=next_update_text,
    )


if __name__ == "__main__":
    main()
