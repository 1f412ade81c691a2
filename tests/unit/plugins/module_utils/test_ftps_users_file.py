"""Planning the users file from the inventory (ftps_users): plugins/module_utils/ftps_users_file.py, and
the accounts checked by the one set of rules (ftpskit_common.accounts)."""

from __future__ import annotations

import json

import pytest
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_users_file import (
    MASK,
    masked,
    parse_current,
    plan_users,
    render,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.accounts import check_accounts
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.passwd import (
    User,
    hash_password,
    verify_password,
)

ALICE_HASH = hash_password("alice-pw")


def account(name: str = "alice", **extra: object) -> dict:
    base = {"name": name, "password": f"{name}-pw", "home": f"/srv/ftps/{name}", "perm": "rw"}
    base.update(extra)
    return base


def current_alice(**extra: object) -> User:
    fields = {"name": "alice", "hash": ALICE_HASH, "home": "/srv/ftps/alice", "perm": "rw"}
    fields.update(extra)
    return User(**fields)


@pytest.mark.parametrize(
    ("accounts", "expected"),
    [
        ([account("../x")], "users[0] (name '../x'): 'name' must not contain '/'"),
        ([account("a/b")], "'name' must not contain '/'"),
        ([account("..")], "must not contain '..'"),
        ([account("")], "'name' must be a non-empty string"),
        ([account("-x")], "must not start with '-'"),
        ([account(), account()], "users[1] (name 'alice'): duplicate user name 'alice' (first at users[0])"),
        ([account(password="")], "'password' (or a pre-computed 'hash') is empty or missing"),
        ([account(password=None)], "is empty or missing"),
        ([account(hash=ALICE_HASH)], "give 'password' or 'hash', not both"),
        ([account(password=None, hash="$md5$x")], "'hash' is not a usable hash"),
        ([account(home="relative/dir")], "'home' must be an absolute path"),
        ([account(home="/")], "'home' must not be '/' or contain '..'"),
        ([account(home="/srv/../etc")], "'home' must not be '/' or contain '..'"),
        ([account(perm="admin")], "'perm' must be one of ro, rw, upload"),
        ([account(max_rate=-1)], "'max_rate' must be an integer >= 0"),
        ([account(max_connections=True)], "'max_connections' must be an integer >= 0"),
        ([account(state="gone")], "'state' must be present or absent"),
        (["alice"], "users[0] must be a mapping"),
    ],
)
def test_bad_accounts_are_named(accounts: list, expected: str) -> None:
    problems = check_accounts(accounts)
    assert any(expected in problem for problem in problems), problems


def test_absent_account_needs_no_password() -> None:
    assert check_accounts([{"name": "bob", "state": "absent"}]) == []


def test_good_accounts_pass() -> None:
    assert (
        check_accounts([account(), account("bob", perm="ro", max_rate=1024), account("c", hash=None)]) == []
    )


def test_new_user_is_hashed_and_added() -> None:
    plan = plan_users([], [account()])
    assert plan.added == ["alice"]
    assert plan.changed
    (user,) = plan.users
    assert user.hash.startswith("$scrypt$")
    assert verify_password("alice-pw", user.hash)


def test_unchanged_password_keeps_the_stored_hash() -> None:
    plan = plan_users([current_alice()], [account()])
    assert not plan.changed
    assert plan.users[0].hash == ALICE_HASH


def test_changed_password_gets_a_new_hash() -> None:
    plan = plan_users([current_alice()], [account(password="new-pw")])
    assert plan.password_changed == ["alice"]
    assert plan.updated == []
    assert verify_password("new-pw", plan.users[0].hash)


@pytest.mark.parametrize(
    ("stored_scheme", "scheme", "rehashed"),
    [
        ("pbkdf2-sha256", "scrypt", True),  # the fleet moved to scrypt: old-scheme hash replaced
        ("scrypt", "pbkdf2-sha256", True),
        ("scrypt", "scrypt", False),
        ("pbkdf2-sha256", "pbkdf2-sha256", False),
    ],
)
def test_old_scheme_hash_is_rehashed_to_the_configured_scheme(
    stored_scheme: str, scheme: str, rehashed: bool
) -> None:
    """Issue 22 row 14: nothing ever re-hashed, so a users file kept two schemes (and two login
    costs) forever. The role re-hashes a user whose stored hash is of another scheme."""
    stored = hash_password("alice-pw", stored_scheme)
    plan = plan_users([current_alice(hash=stored)], [account()], scheme=scheme)
    new_hash = plan.users[0].hash
    assert (new_hash != stored) is rehashed
    assert new_hash.startswith("$" + scheme + "$")
    assert verify_password("alice-pw", new_hash)
    assert plan.password_changed == (["alice"] if rehashed else [])
    again = plan_users(plan.users, [account()], scheme=scheme)  # idempotent afterwards
    assert not again.changed


def test_weaker_scrypt_hash_is_rehashed_stronger_kept() -> None:
    from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.passwd import (
        _b64encode,
        _scrypt,
    )

    salt = b"s" * 16
    for ln, rehashed in ((12, True), (15, False)):
        digest = _scrypt(b"alice-pw", salt, ln=ln, r=8, p=1, dklen=32)
        stored = f"$scrypt$ln={ln},r=8,p=1${_b64encode(salt)}${_b64encode(digest)}"
        plan = plan_users([current_alice(hash=stored)], [account()])
        assert (plan.users[0].hash != stored) is rehashed


def test_precomputed_hash_is_used_as_is() -> None:
    given = hash_password("x", "pbkdf2-sha256")
    plan = plan_users([current_alice()], [account(password=None, hash=given)])
    assert plan.users[0].hash == given
    assert plan.password_changed == ["alice"]


@pytest.mark.parametrize(
    ("change", "field"),
    [({"perm": "ro"}, "perm"), ({"home": "/srv/other"}, "home"), ({"max_rate": 10}, "max_rate")],
)
def test_attribute_change_is_an_update(change: dict, field: str) -> None:
    plan = plan_users([current_alice()], [account(**change)])
    assert plan.updated == ["alice"]
    assert plan.password_changed == []
    assert getattr(plan.users[0], field) == change[field]


def test_absent_user_is_removed_and_others_kept() -> None:
    bob = User(name="bob", hash=ALICE_HASH, home="/srv/ftps/bob")
    plan = plan_users([current_alice(), bob], [{"name": "alice", "state": "absent"}])
    assert plan.removed == ["alice"]
    assert [user.name for user in plan.users] == ["bob"]


def test_absent_user_that_does_not_exist_changes_nothing() -> None:
    assert not plan_users([current_alice()], [account(), {"name": "ghost", "state": "absent"}]).changed


def test_exclusive_removes_unlisted_users() -> None:
    bob = User(name="bob", hash=ALICE_HASH, home="/srv/ftps/bob")
    plan = plan_users([current_alice(), bob], [account()], exclusive=True)
    assert plan.removed == ["bob"]
    assert [user.name for user in plan.users] == ["alice"]


def test_non_exclusive_keeps_unlisted_users() -> None:
    bob = User(name="bob", hash=ALICE_HASH, home="/srv/ftps/bob")
    plan = plan_users([current_alice(), bob], [account()])
    assert not plan.changed
    assert [user.name for user in plan.users] == ["alice", "bob"]


def test_render_round_trips_and_masks() -> None:
    plan = plan_users([], [account(), account("bob", perm="upload")])
    text = render(plan.users)
    assert parse_current(text) == plan.users
    shown = masked(plan.users, ["bob"])
    assert "alice-pw" not in shown and "$scrypt$" not in shown
    entries = {entry["name"]: entry["hash"] for entry in json.loads(shown)["users"]}
    assert entries == {"alice": MASK, "bob": f"{MASK} (changed)"}


def test_missing_file_is_empty() -> None:
    assert parse_current(None) == []


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="hash scheme"):
        plan_users([], [account()], scheme="md5")
