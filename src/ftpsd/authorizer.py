"""Virtual users from the users file: scrypt/PBKDF2 hashes, a jailed home, ro/rw/upload perms.

No anonymous access: only names in the users file exist, and every one needs a hash.
"""

from __future__ import annotations

import logging
import os

from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer
from pyftpdlib.filesystems import AbstractedFS

from ftpskit_common.passwd import User, hash_password, verify_password

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

# Verified when the user does not exist, so an unknown name costs as much as a wrong password.
_DUMMY_HASH = hash_password("ftpsd-dummy-password-for-timing")


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

    def check_password(self, username: str, password: str) -> bool:
        """Slow hash check; safe to run in a worker thread (hashlib releases the GIL)."""
        user = self.users.get(username)
        if user is None:
            verify_password(password, _DUMMY_HASH)
            return False
        return verify_password(password, user.hash)

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


class JailedFS(AbstractedFS):
    """The user's home is ``/``. ``..``, absolute paths and symlinks cannot leave it.

    ``ftp2fs`` normalises every path against the virtual root (so ``/etc/passwd`` means
    ``<home>/etc/passwd`` and ``../../x`` stops at the root); ``validpath`` then resolves
    symlinks with ``realpath`` and refuses anything whose real location is outside the home.
    Listings hide nothing, but a symlink pointing out cannot be entered, read or written.
    """

    _real_root: tuple[str, str] = ("", "")  # (root, its realpath), resolved once per root

    def validpath(self, path: str) -> bool:
        root, real_root = self._real_root
        if root != self.root:
            # Resolved once per session: a home later swapped for a symlink cannot move the jail.
            root, real_root = self._real_root = (self.root, os.path.realpath(self.root))
        real = os.path.realpath(path)
        return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)

    def open(self, filename: str, mode: str):
        if not self.validpath(filename):
            raise PermissionError(f"{filename}: outside the home directory")
        return super().open(filename, mode)

    def chdir(self, path: str) -> None:
        if not self.validpath(path):
            raise PermissionError(f"{path}: outside the home directory")
        super().chdir(path)
