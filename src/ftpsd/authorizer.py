"""Virtual users from the users file: scrypt/PBKDF2 hashes, a home, ro/rw/upload perms.

The home is enforced by :class:`ftpsd.homefs.HomeFS` (the containment invariant).

No anonymous access: only names in the users file exist, and every one needs a hash.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os

from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer

from ftpskit_common.passwd import User, hash_password, parse_hash, verify_password

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

# Verified for an unknown name when the users file is empty.
_DUMMY_HASH = hash_password("ftpsd-dummy-password-for-timing")


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
        # Unknown names verify a stand-in with the parameters of one user (chosen by the name,
        # so a name always costs the same), never a cheaper or dearer KDF: no user enumeration
        # by timing, whatever mix of schemes and costs the users file holds.
        by_params: dict[str, str] = {}
        self._stand_ins = []
        for user in sorted(users, key=lambda u: u.name):
            params = user.hash.rsplit("$", 2)[0] + f"${len(parse_hash(user.hash).salt)}"
            if params not in by_params:
                by_params[params] = stand_in_hash(user.hash)
            self._stand_ins.append(by_params[params])
        if not self._stand_ins:
            self._stand_ins.append(_DUMMY_HASH)

    def stand_in(self, username: str) -> str:
        """The hash an unknown ``username`` is checked against (the same for every call)."""
        pick = int.from_bytes(hashlib.sha256(username.encode("utf-8", "surrogateescape")).digest()[:8], "big")
        return self._stand_ins[pick % len(self._stand_ins)]

    def check_password(self, username: str, password: str) -> bool:
        """Slow hash check; safe to run in a worker thread (hashlib releases the GIL)."""
        user = self.users.get(username)
        # One code path for known and unknown names: the same KDF call with the same cost.
        matches = verify_password(password, user.hash if user is not None else self.stand_in(username))
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
