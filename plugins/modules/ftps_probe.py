#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License
"""Ansible module ftps_probe: connect to an FTPS server, verify it, report its certificate."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ftps_probe
short_description: Verify an FTPS server and report its certificate, TLS and data-channel facts
description:
  - Connects to an FTPS server with explicit (C(AUTH TLS)) or implicit FTPS, verifies its
    certificate chain and hostname against the system trust store or a given CA file, compares
    the certificate with a pin, and returns the certificate's fields.
  - With credentials, logs in and proves a data connection on a reused TLS session (a listing),
    and optionally a round trip (upload, download, SHA-256 comparison, delete).
  - Standard library only on the host; the logic lives in C(plugins/module_utils/ftpskit_common/client.py).
  - Every failure (unknown CA, pin mismatch, hostname not in the SANs, expired certificate,
    server without TLS, login refused, data connection refused) fails the task with a sentence
    saying what is wrong, and C(error_kind) naming the case.
options:
  host:
    description: Address or name to connect to. Required unless O(targets) is given.
    type: str
  targets:
    description:
      - Probe each of these listeners instead of the one O(host), at most O(concurrency) at the
        same time. The other options (trust, pin file, user, round trip, timeout) apply to each.
      - The task does not fail when a target fails; RV(results) says, per target, what failed
        (O(targets[].label) names it), so that one failing listener never hides the others.
    type: list
    elements: dict
    suboptions:
      host:
        description: Address or name to connect to.
        type: str
        required: true
      port:
        description: TCP port; C(0) means 21 for explicit and 990 for implicit FTPS.
        type: int
        default: 0
      implicit:
        description: Implicit FTPS.
        type: bool
        default: false
      server_hostname:
        description: Name the certificate must be valid for, when it differs from O(targets[].host).
        type: str
      fingerprint_sha256:
        description: Expected SHA-256 fingerprint of this target's certificate (a pin).
        type: str
      round_trip:
        description: The round trip for this target; unset, O(round_trip) applies.
        type: bool
      label:
        description: A name for this target, returned as C(target) in RV(results) (e.g. C(server:port)).
        type: str
  concurrency:
    description: With O(targets), how many probes run at the same time (1 = one after the other).
    type: int
    default: 16
  port:
    description: TCP port; C(0) means 21 for explicit and 990 for implicit FTPS.
    type: int
    default: 0
  implicit:
    description: Implicit FTPS (TLS from the first byte) instead of C(AUTH TLS).
    type: bool
    default: false
  server_hostname:
    description:
      - Name the certificate must be valid for (and sent as SNI), when it differs from O(host).
    type: str
  validate_certs:
    description:
      - Verify the chain and hostname. With V(false) only a pin (O(pin) or O(pin_file)) can
        establish trust; use that for self-signed servers accepted with C(ftps-trust).
    type: bool
    default: true
  ca_path:
    description: PEM file of CA certificates to verify against instead of the system trust store.
    type: path
  pin:
    description:
      - Expected certificate. Each key given must match.
    type: dict
    suboptions:
      fingerprint_sha256:
        description: SHA-256 fingerprint of the certificate (hex, colons and case ignored).
        type: str
      spki_sha256:
        description: SHA-256 of the SubjectPublicKeyInfo, base64 (or hex).
        type: str
  pin_file:
    description:
      - A C(known_servers.json) pin file (written by C(ftps-trust) or the C(ftps_client) role);
        the entry for O(host):O(port) is the pin, however the file spells the key (case, a
        trailing dot, an IPv6 address's form). A missing entry means no pin; with
        O(validate_certs=false) the module then fails (C(error_kind=pin_mismatch)) instead of
        probing a server whose identity nothing would check. An unreadable or unusable pin
        file fails the module.
    type: path
  username:
    description: Log in as this user to prove the data channel.
    type: str
  password:
    description: Password for O(username).
    type: str
  client_cert:
    description:
      - A client certificate (PEM; the certificate, then any intermediates) presented to servers
        that ask for one. A user whose C(auth) is C(certificate) logs in with it and no O(password);
        C(certificate+password) needs both.
      - Read on the host the module runs on.
    type: path
  client_key:
    description: The private key of O(client_cert) (PEM, unencrypted); default, in O(client_cert).
    type: path
  remote_dir:
    description: Directory to change to before the listing and the round trip.
    type: str
    default: ""
  check_data_channel:
    description: After login, list the directory over a data connection that reuses the TLS session.
    type: bool
    default: true
  round_trip:
    description:
      - Upload random bytes, download them, compare SHA-256, delete the file. Skipped in check mode.
    type: bool
    default: false
  payload_size:
    description: Bytes uploaded by the round trip.
    type: int
    default: 65536
  timeout:
    description: Seconds for the connection and each reply.
    type: float
    default: 15
extends_documentation_fragment:
  - ftpskit.ftps.attributes.no_diff
attributes:
  check_mode:
    description: Reports what would change without changing it.
    details: Connects and verifies; makes no transfer (the round trip is skipped).
notes:
  - Never reports C(changed); the round trip removes the file it uploads.
  - On Python older than 3.13 only the leaf of the served chain can be read (RV(chain_complete) is false).
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Verify the server against the system trust store and prove a round trip
  ftpskit.ftps.ftps_probe:
    host: ftp1.example.internal
    username: probe
    # From the vault; the module never logs it (its password option is no_log), so the task
    # needs no no_log of its own and its output still names the server.
    password: "{{ vault_probe_password }}"
    round_trip: true

- name: Check the implicit port against the fleet CA and the pinned certificate
  ftpskit.ftps.ftps_probe:
    host: 10.213.0.11
    server_hostname: ftp1.example.internal
    implicit: true
    ca_path: /usr/local/share/ca-certificates/ftps-kit-fleet.crt
    pin:
      fingerprint_sha256: "{{ hostvars['ftp1'].ftps_pki_certificate.fingerprint_sha256 }}"

- name: Probe every listener of a fleet, 16 at a time, each with its own pin
  ftpskit.ftps.ftps_probe:
    targets:
      - {host: ftp1.example.internal, port: 21, label: "ftp1:21", fingerprint_sha256: "ab12..."}
      - {host: ftp1.example.internal, port: 990, implicit: true, label: "ftp1:990 (implicit)"}
    concurrency: 16
  register: fleet_probe

- name: A self-signed server trusted through its pin only
  ftpskit.ftps.ftps_probe:
    host: legacy.example.internal
    validate_certs: false
    pin_file: /etc/ftps-trust/known_servers.json
"""

RETURN = r"""
certificate:
  description: Fields of the server certificate (read with the standard library, verified or not).
  returned: when a TLS handshake happened
  type: dict
  sample:
    subject: CN=ftp1.example.internal
    issuer: CN=ftps-kit fleet CA
    sans: ["DNS:ftp1.example.internal", "IP:10.213.0.11"]
    not_before: "2026-11-24T08:00:00Z"
    not_after: "2027-02-22T08:00:00Z"
    days_remaining: 89
    expired: false
    public_key: {type: EC, bits: 256, curve: secp256r1}
    signature_algorithm: ecdsa-with-SHA384
    serial_hex: "5A:0C:..."
    fingerprint_sha256: "AB:CD:..."
    spki_sha256: "q1w2e3...="
chain:
  description: Fields of every certificate the server sent (leaf first); only the leaf before Python 3.13.
  returned: when a TLS handshake happened
  type: list
  elements: dict
chain_complete:
  description: Whether RV(chain) is the whole served chain.
  returned: when a TLS handshake happened
  type: bool
tls_version:
  description: Negotiated TLS version of the control connection.
  returned: success
  type: str
  sample: TLSv1.3
cipher:
  description: Negotiated cipher suite.
  returned: success
  type: str
  sample: TLS_AES_256_GCM_SHA384
verified:
  description: Chain and hostname were verified (false with O(validate_certs=false)).
  returned: always
  type: bool
pin_matched:
  description: Whether the certificate matched the pin; null when there was no pin.
  returned: always
  type: bool
data_session_reused:
  description: Whether every data connection reused the control connection's TLS session; null without login.
  returned: always
  type: bool
round_trip:
  description: The round trip (file, bytes, sha256, match, deleted), or null.
  returned: always
  type: dict
results:
  description:
    - With O(targets), one entry per target in the order given, each with C(target) (the target
      as given), C(ok), the fields above, and on failure C(error_kind) and C(msg).
  returned: when O(targets) is given
  type: list
  elements: dict
error_kind:
  description:
    - On failure, the case; one of connect, implicit_port (O(implicit=false) against a port
      that speaks TLS from the first byte), no_tls, tls, unknown_ca, hostname_mismatch,
      expired, not_yet_valid, verify, client_cert (O(client_cert) or O(client_key) cannot be
      loaded), pin_mismatch, login, transfer.
  returned: failure
  type: str
  sample: pin_mismatch
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_probe_parallel import probe_many
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.client import (
    PinStore,
    PinStoreError,
    ProbeError,
    probe,
    server_label,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "host": {"type": "str"},
            "targets": {
                "type": "list",
                "elements": "dict",
                "options": {
                    "host": {"type": "str", "required": True},
                    "port": {"type": "int", "default": 0},
                    "implicit": {"type": "bool", "default": False},
                    "server_hostname": {"type": "str"},
                    "fingerprint_sha256": {"type": "str"},
                    "round_trip": {"type": "bool"},
                    "label": {"type": "str"},
                },
            },
            "concurrency": {"type": "int", "default": 16},
            "port": {"type": "int", "default": 0},
            "implicit": {"type": "bool", "default": False},
            "server_hostname": {"type": "str"},
            "validate_certs": {"type": "bool", "default": True},
            "ca_path": {"type": "path"},
            "pin": {
                "type": "dict",
                "options": {
                    "fingerprint_sha256": {"type": "str"},
                    "spki_sha256": {"type": "str", "no_log": False},
                },
            },
            "pin_file": {"type": "path"},
            "username": {"type": "str"},
            "password": {"type": "str", "no_log": True},
            "client_cert": {"type": "path"},
            "client_key": {"type": "path", "no_log": False},
            "remote_dir": {"type": "str", "default": ""},
            "check_data_channel": {"type": "bool", "default": True},
            "round_trip": {"type": "bool", "default": False},
            "payload_size": {"type": "int", "default": 65536},
            "timeout": {"type": "float", "default": 15.0},
        },
        mutually_exclusive=[("pin", "pin_file"), ("host", "targets"), ("pin", "targets")],
        required_one_of=[("host", "targets")],
        required_by={"password": "username", "client_key": "client_cert"},
        supports_check_mode=True,
    )
    p = module.params
    if p["targets"] is not None:
        _probe_targets(module)
    port = p["port"] or (990 if p["implicit"] else 21)
    pin = {k: v for k, v in (p["pin"] or {}).items() if v} or None
    if p["pin"] is not None and not pin:
        module.fail_json(msg="pin needs fingerprint_sha256 or spki_sha256")
    if p["pin_file"]:
        try:
            pin = PinStore(p["pin_file"]).get(p["host"], port)
        except (PinStoreError, ValueError) as exc:
            module.fail_json(msg=str(exc))
        if pin is None and not p["validate_certs"]:
            # Fail closed: the pin file was to be the only check, and it has none for this server.
            module.fail_json(
                msg=f"{p['pin_file']} has no pin for {server_label(p['host'], port)}: with "
                "validate_certs false nothing would check the server's identity",
                error_kind="pin_mismatch",
            )
    if not p["validate_certs"] and not pin:
        module.warn("validate_certs=false without a pin: the server's identity is not checked")
    round_trip = p["round_trip"] and not module.check_mode
    try:
        result = probe(
            p["host"],
            port,
            implicit=p["implicit"],
            verify=p["validate_certs"],
            ca_file=p["ca_path"],
            server_hostname=p["server_hostname"],
            pin=pin,
            username=p["username"],
            password=p["password"],
            client_cert=p["client_cert"],
            client_key=p["client_key"],
            check_data_channel=p["check_data_channel"],
            round_trip=round_trip,
            remote_dir=p["remote_dir"],
            payload_size=p["payload_size"],
            timeout=p["timeout"],
        )
    except ProbeError as exc:
        hint = " (set implicit: true)" if exc.kind == "implicit_port" else ""
        module.fail_json(msg=exc.message + hint, error_kind=exc.kind, **_public(exc.result))
    if p["round_trip"] and module.check_mode:
        result["round_trip"] = {"skipped": "check mode makes no transfer"}
    module.exit_json(changed=False, **_public(result))


def _probe_targets(module: AnsibleModule) -> None:
    """The list form: every target probed (bounded in parallel); failures are per target."""
    p = module.params
    store = None
    if p["pin_file"]:
        try:
            store = PinStore(p["pin_file"])
        except PinStoreError as exc:
            module.fail_json(msg=str(exc))
    targets = []
    for t in p["targets"]:
        port = t["port"] or (990 if t["implicit"] else 21)
        pin = {"fingerprint_sha256": t["fingerprint_sha256"]} if t["fingerprint_sha256"] else None
        if store is not None and pin is None:
            try:
                pin = store.get(t["host"], port)
            except (PinStoreError, ValueError) as exc:
                module.fail_json(msg=str(exc))
        trip = None if t["round_trip"] is None else t["round_trip"] and not module.check_mode
        targets.append({**t, "port": port, "pin": pin, "round_trip": trip})
    if not p["validate_certs"] and any(not t["pin"] for t in targets):
        module.warn("validate_certs=false without a pin: some servers' identity is not checked")
    try:
        results = probe_many(
            targets,
            p["concurrency"],
            verify=p["validate_certs"],
            ca_file=p["ca_path"],
            username=p["username"],
            password=p["password"],
            client_cert=p["client_cert"],
            client_key=p["client_key"],
            check_data_channel=p["check_data_channel"],
            round_trip=p["round_trip"] and not module.check_mode,
            remote_dir=p["remote_dir"],
            payload_size=p["payload_size"],
            timeout=p["timeout"],
        )
    except ValueError as exc:  # probe_many's bound on concurrency, checked before any probe
        module.fail_json(msg=str(exc))
    for r, given in zip(results, p["targets"], strict=True):
        wanted = p["round_trip"] if given["round_trip"] is None else given["round_trip"]
        r["target"] = {k: v for k, v in r["target"].items() if k not in ("pin", "round_trip")}
        if r.get("error_kind") == "implicit_port":
            r["msg"] += " (set implicit: true)"
        if wanted and module.check_mode:
            r["round_trip"] = {"skipped": "check mode makes no transfer"}
    module.exit_json(changed=False, results=[_public(r) for r in results])


def _public(result: dict) -> dict:
    """Drop the PEM copy (bulky) and keys Ansible reserves."""
    return {k: v for k, v in result.items() if k not in ("certificate_pem", "changed", "failed")}


if __name__ == "__main__":
    main()
