#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License
"""Ansible module: manage ftpsd's virtual users file."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ftps_users
short_description: Manage ftpsd's virtual users file
description:
  - Adds, updates and removes virtual users in ftpsd's users file, hashing passwords with
    ftpsd's own code (scrypt by default).
  - Idempotent without storing plaintext anywhere; a user whose password is unchanged keeps its
    stored hash, because the password is verified against the hash rather than re-hashed.
  - Writes atomically (temporary file, then rename); the daemon picks the file up on reload.
extends_documentation_fragment:
  - ansible.builtin.files
  - ftpskit.ftps.attributes
options:
  path:
    description: The users file (the default is where ftpsd reads it when its configuration names none).
    type: path
    default: /etc/ftpsd/users.json
  users:
    description: The wanted accounts. Users not listed are kept unless O(exclusive=true).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Login name (letters, digits, C(_ . @ + -); no C(/), no C(..)).
        type: str
        required: true
      password:
        description:
          - The password (from vault). Give this or O(users[].hash).
          - Not needed when O(users[].auth=certificate).
        type: str
      hash:
        description: A pre-computed C($scrypt$...) or C($pbkdf2-sha256$...) hash.
        type: str
      home:
        description: Absolute path of the user's jail.
        type: path
      perm:
        description: C(ro) read-only, C(rw) read-write, C(upload) upload-only.
        type: str
        choices: [ro, rw, upload]
        default: rw
      max_rate:
        description: Bytes per second, 0 = unlimited.
        type: int
        default: 0
      max_connections:
        description: Simultaneous sessions, 0 = unlimited.
        type: int
        default: 0
      auth:
        description:
          - How the user logs in. V(password); V(certificate), a client certificate whose
            configured field equals O(users[].certificate_identity) and no password; or
            V(certificate+password), both.
          - The daemon's C(tls.client_ca_file) must be set for the certificate modes to work.
        type: str
        choices: [password, certificate, certificate+password]
        default: password
      certificate_identity:
        description:
          - The exact string the configured field of the user's client certificate must equal, for
            example V(alice@example.org); the field is the daemon's C(tls.client_cert_field) (SAN
            email, SAN URI or subject CN).
          - Required unless O(users[].auth=password); unique across users; printable, at most 255
            characters. Compared exactly (case-sensitive); the user name is never taken from a certificate.
        type: str
      state:
        description: Whether the user exists.
        type: str
        choices: [present, absent]
        default: present
  exclusive:
    description: Remove users that O(users) does not list.
    type: bool
    default: false
  hash_scheme:
    description:
      - Scheme for new hashes.
      - A stored hash of another scheme, or weaker than this scheme's defaults, is re-hashed from
        the user's O(users[].password), so the file holds one scheme (a pre-computed
        O(users[].hash) is written as given).
    type: str
    choices: [scrypt, pbkdf2-sha256]
    default: scrypt
attributes:
  check_mode:
    description: Reports what would change without changing it.
  diff_mode:
    details: Hashes are masked in the diff.
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Manage FTPS users
  ftpskit.ftps.ftps_users:
    owner: root
    group: ftpsd
    mode: "0640"
    users:
      - name: alice
        password: "{{ vault_ftps_alice_password }}"
        home: /srv/ftps/alice
        perm: rw
      - name: bob
        state: absent
  no_log: true
  notify: ftps users changed
"""

RETURN = r"""
users:
  description: Names of the users in the file afterwards.
  returned: always
  type: list
  elements: str
  sample: [alice, carol]
added:
  description: Users created.
  returned: always
  type: list
  elements: str
  sample: [carol]
updated:
  description: Users whose home, permissions or limits changed.
  returned: always
  type: list
  elements: str
  sample: [alice]
password_changed:
  description: Users whose hash changed (a new password, or re-hashed to O(hash_scheme)).
  returned: always
  type: list
  elements: str
  sample: []
removed:
  description: Users removed.
  returned: always
  type: list
  elements: str
  sample: [bob]
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.accounts import check_accounts
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.passwd import (
    USERS_FILE,
    UsersFileError,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_users_file import (
    masked,
    parse_current,
    plan_users,
    render,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": USERS_FILE},
            "users": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "name": {"type": "str", "required": True},
                    "password": {"type": "str", "no_log": True},
                    "hash": {"type": "str", "no_log": True},
                    "home": {"type": "path"},
                    "perm": {"type": "str", "choices": ["ro", "rw", "upload"], "default": "rw"},
                    "max_rate": {"type": "int", "default": 0},
                    "max_connections": {"type": "int", "default": 0},
                    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
                    "auth": {
                        "type": "str",
                        "choices": ["password", "certificate", "certificate+password"],
                        "default": "password",
                    },
                    "certificate_identity": {"type": "str"},
                },
            },
            "exclusive": {"type": "bool", "default": False},
            "hash_scheme": {"type": "str", "choices": ["scrypt", "pbkdf2-sha256"], "default": "scrypt"},
        },
        add_file_common_args=True,
        supports_check_mode=True,
    )
    path = module.params["path"]
    problems = check_accounts(module.params["users"])
    if problems:
        module.fail_json(msg="; ".join(problems))

    try:
        with open(path, encoding="utf-8") as handle:
            text: str | None = handle.read()
    except FileNotFoundError:
        text = None
    except OSError as exc:
        module.fail_json(msg=f"cannot read {path}: {exc.strerror}")
    try:
        current = parse_current(text)
        plan = plan_users(
            current,
            module.params["users"],
            exclusive=module.params["exclusive"],
            scheme=module.params["hash_scheme"],
        )
        new_text = render(plan.users)
    except UsersFileError as exc:
        module.fail_json(msg=f"{path}: {exc}")

    changed = plan.changed or text is None
    result = {
        "changed": changed,
        "users": [user.name for user in plan.users],
        "added": plan.added,
        "updated": plan.updated,
        "password_changed": plan.password_changed,
        "removed": plan.removed,
        "diff": {
            "before_header": path,
            "after_header": path,
            "before": masked(current) if text is not None else "",
            "after": masked(plan.users, plan.password_changed + plan.added),
        },
    }
    if changed and not module.check_mode:
        directory = os.path.dirname(path) or "."
        fd, tmp = tempfile.mkstemp(prefix=".users.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(new_text)
                handle.flush()
                os.fsync(handle.fileno())
            module.atomic_move(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    file_args = module.load_file_common_arguments(module.params)
    if not (module.check_mode and text is None):
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
