"""Virtual users from the users file: scrypt/PBKDF2 hashes, a home, ro/rw/upload perms.

The home is enforced by :class:`ftpsd.homefs.HomeFS` (the containment invariant).

No anonymous access: only names in the users file exist, and every one needs a hash.
"""

from __future__ import annotations

import base64
import functools
import logging
import os

from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer

from ftpskit_common.passwd import User, cost_class, hash_password, parse_hash, verify_password

log = logging.getLogger("ftpsd")

# pyftpdlib permission letters: e=CWD l=LIST r=RETR a=APPE d=DELE/RMD f=RNFR/RNTO m=MKD w=STOR
# T=MFMT. SITE CHMOD (M) is never granted: virtual users do not manage modes.
PERM_LETTERS = {
    "ro": "elr",
    "rw": "elradfmwT",
    # Drop box: may enter, list, create directories and store new files; may not read, delete,
    # rename, append or overwrite (the handler refuses STOR onto an existing file).
    "upload": "elmw",
}


@functools.cache
def _dummy_hash() -> str:
    """Verified for an unknown name when the users file has no password account. Made on first
    need, not at import: hashing at import ran scrypt in every process that imports ftpsd
    (``ftpsd status``, ``check-config``, the daemon before ``ftpsd.heap`` fixed the heap)."""
    return hash_password("ftpsd-dummy-password-for-timing")


def stand_in_hash(encoded: str) -> str:
    """A hash with the scheme, parameters, salt and digest sizes of ``encoded`` that no password
    matches (random salt and digest): verifying it costs exactly what verifying ``encoded`` does."""
    parsed = parse_hash(encoded)
    head = encoded.rsplit("$", 2)[0]
    salt = base64.b64encode(os.urandom(len(parsed.salt))).decode().rstrip("=")
    digest = base64.b64encode(os.urandom(len(parsed.digest))).decode().rstrip("=")
    return f"{head}${salt}${digest}"


class FtpsdAuthorizer(DummyAuthorizer):
    """Users from :func:`ftpskit_common.passwd.load_users`; immutable (a reload makes a new one)."""

    def __init__(self, users: list[User]) -> None:
        super().__init__()
        self.users: dict[str, User] = {}
        for user in users:
            if not os.path.isdir(user.home):
                log.warning(
                    "user %s: home %s is not a directory; the user cannot log in", user.name, user.home
                )
                continue
            self.add_user(user.name, "", user.home, perm=PERM_LETTERS[user.perm])
            self.users[user.name] = user
        # One stand-in per cost class in the users file (scheme, parameters, sizes), in a fixed
        # order. Every check verifies one hash of each class: the user's own hash for its class,
        # stand-ins for the others (all of them for an unknown name). So a check costs the same
        # for every name, known or not, whatever mix of schemes and costs the file holds.
        # certificate_identity -> user name (unique: validate_users refuses duplicates).
        self.by_identity: dict[str, str] = {
            u.certificate_identity: u.name for u in self.users.values() if u.certificate_identity
        }
        self.stand_ins: dict[str, str] = {}
        for user in sorted(users, key=lambda u: u.name):
            if not user.hash:
                continue  # an auth = certificate account has no password to check
            cost = cost_class(user.hash)
            if cost not in self.stand_ins:
                self.stand_ins[cost] = stand_in_hash(user.hash)
        if not self.stand_ins:
            dummy = _dummy_hash()
            self.stand_ins[cost_class(dummy)] = dummy
        self._cost = {user.name: cost_class(user.hash) for user in self.users.values() if user.hash}
        if len(self.stand_ins) > 1:
            log.warning(
                "the users file mixes %d hash schemes/costs: every login pays all of them (no user "
                "enumeration by timing) until the hashes are one scheme again; the ftps_users role "
                "re-hashes them with ftps_users_hash_scheme",
                len(self.stand_ins),
            )

    def check_password(self, username: str, password: str) -> bool:
        """Slow hash check; safe to run in a worker thread (hashlib releases the GIL). An account
        without a hash (auth = certificate) pays the same and never matches."""
        user = self.users.get(username)
        own = self._cost.get(username)
        matches = False
        # The same KDF calls, with the same parameters, in the same order, for every name.
        for cost, stand_in in self.stand_ins.items():
            if cost == own:
                matches = verify_password(password, user.hash)
            else:
                verify_password(password, stand_in)
        return matches and user is not None

    def validate_authentication(self, username: str, password: str, handler: object) -> None:
        if not self.check_password(username, password):
            raise AuthenticationFailed("Authentication failed.")

    def get_user(self, username: str) -> User | None:
        return self.users.get(username)

    def has_user(self, username: str) -> bool:
        return username in self.user_table

    def impersonate_user(self, username: str, password: str) -> None:
        """Virtual users share the daemon's uid: nothing to switch."""

    def terminate_impersonation(self, username: str) -> None:
        """Virtual users share the daemon's uid: nothing to switch."""
