"""The filesystem a user sees: their home, resolved so that no operation can leave it.

Containment is a property of how names are resolved, not a check on strings. At login the
session opens its home once (``O_PATH | O_DIRECTORY``; the configured path is the operator's
and may contain symlinks). From then on every operation resolves the client's path *relative to
that descriptor*, one component at a time, and never follows a symbolic link:

* the directory that holds the target is opened with Linux ``openat2(2)`` and
  ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`` (one system call), or, where
  ``openat2`` is missing (kernel < 5.6) or filtered (ENOSYS/EPERM, e.g. by a seccomp profile),
  by opening each component with ``O_PATH | O_DIRECTORY | O_NOFOLLOW`` relative to the previous
  one;
* the operation itself is the ``*at`` call on that descriptor and the last name, never following
  a link there either: ``openat(O_NOFOLLOW)``, ``fstatat(AT_SYMLINK_NOFOLLOW)``, ``renameat``,
  ``unlinkat``, ``mkdirat``, ``utimensat(AT_SYMLINK_NOFOLLOW)``, ``fdopendir``.

The kernel walks from the home's inode downwards only (pyftpdlib's ``ftp2fs`` has already
removed every ``..``, and ``RESOLVE_BENEATH`` would refuse one anyway), so whatever another
session renames in between, each step lands on an entry of a directory that is itself inside
the home; a symlink anywhere in the path, planted or swapped in at any moment, ends the walk
with ELOOP instead of being followed. There is no window between a check and a use because
there is no separate check.

Symlinks inside a home are never followed, even ones that point to another place in the same
home: following "inside" links would need the target resolved against the home, and the
target can be changed between that resolution and the use (the race this module exists to
close). Listings show a link as a link (``l`` in LIST, ``type=OS.unix=slink`` in MLSD/MLST)
with the link's own metadata and without its target, so nothing about what it points to is
disclosed. Users cannot create links over FTP; only a local account can plant one.

Uploads that must not replace an existing file (upload-only accounts) are committed with
``renameat2(RENAME_NOREPLACE)`` (glibc >= 2.28, through ctypes), or with ``linkat`` + ``unlinkat``
where the filesystem does not support that flag (or the call is missing or filtered); both fail
with EEXIST instead of replacing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import re
import secrets
import stat
import sys
import time
import weakref
from collections.abc import Iterable, Iterator

from pyftpdlib.exceptions import FilesystemError
from pyftpdlib.filesystems import AbstractedFS, _months_map
from pyftpdlib.utils import memoize

from ftpsd.safetext import escape_name

# openat2(2): struct open_how and its RESOLVE_* flags (linux/openat2.h); 437 on every
# architecture that has the unified syscall table (all that Debian ships, but alpha).
_SYS_OPENAT2 = 437
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_RESOLVE = _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS
_RENAME_NOREPLACE = 1

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
LIST_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
_EAGAIN_RETRIES = 8  # openat2 returns EAGAIN when a rename raced a walk; retried, then refused

# An upload's temporary name: "." + name + "." + 12 hex digits + UPLOAD_SUFFIX (part_name()).
# Such names are the daemon's: never listed to a client (HomeFS.listdir), never addressable by
# one (ftpsd.handlers.FtpsdHandler.process_command), swept when left over (ftpsd.partials).
UPLOAD_SUFFIX = ".ftpsd-part"
PART_NAME = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{12}" + re.escape(UPLOAD_SUFFIX), re.DOTALL)


# A name is at most 255 bytes (NAME_MAX); the temporary name adds 25 around the upload's name.
_NAME_MAX = 255
_PART_NAME_ROOM = _NAME_MAX - len(f"..{'0' * 12}{UPLOAD_SUFFIX}")


def part_name(name: str) -> str:
    """A fresh temporary name for an upload of ``name`` (same directory), never longer than a
    name may be: a long ``name`` is shortened in it (whole characters), so every name a client
    may store (up to 255 bytes) can be uploaded (the real name is the session's record, not
    this one's; ``final_name`` of it is then the shortened name)."""
    while len(name.encode("utf-8", "surrogateescape")) > _PART_NAME_ROOM:
        name = name[:-1]
    return f".{name}.{secrets.token_hex(6)}{UPLOAD_SUFFIX}"


def final_name(name: str) -> str | None:
    """The name an upload's temporary file stands for; None if ``name`` is not one."""
    match = PART_NAME.fullmatch(name)
    return match["name"] if match else None


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_renameat2 = getattr(_libc, "renameat2", None)
if _renameat2 is not None:
    _renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    _renameat2.restype = ctypes.c_int

# None: not probed yet; then True/False for the whole process.
_openat2_works: bool | None = None if sys.platform == "linux" else False


def _openat2(dirfd: int, path: bytes, flags: int) -> int:
    how = _OpenHow(flags, 0, _RESOLVE)
    for _attempt in range(_EAGAIN_RETRIES):
        fd = _syscall(
            ctypes.c_long(_SYS_OPENAT2),
            ctypes.c_int(dirfd),
            ctypes.c_char_p(path),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err != errno.EAGAIN:
            raise OSError(err, os.strerror(err))
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))


def openat2_available() -> bool:
    """Whether this kernel (and seccomp profile) lets us use openat2; probed once."""
    global _openat2_works  # noqa: PLW0603 - a process-wide capability, probed once
    if _openat2_works is None:
        try:
            os.close(_openat2(-100, b".", os.O_PATH | os.O_CLOEXEC))  # -100: AT_FDCWD
            _openat2_works = True
        except OSError as err:  # any other error comes from a kernel that has the call
            _openat2_works = err.errno not in (errno.ENOSYS, errno.EPERM)
    return _openat2_works


def open_beneath(rootfd: int, parts: Iterable[str], flags: int = _DIR_FLAGS) -> int:
    """Open the directory ``rootfd/parts...`` without following any symlink or leaving ``rootfd``.

    ``parts`` are single names (no "/", ".", "..", NUL: :meth:`HomeFS._parts` guarantees it).
    Returns a new descriptor opened with ``flags`` (which must include ``O_DIRECTORY``); a
    symlink in any position raises ELOOP (or ENOTDIR on the fallback walk).
    """
    parts = list(parts)
    if not parts:
        return os.open(".", flags, dir_fd=rootfd)  # reopen the root itself
    if openat2_available():
        return _openat2(rootfd, os.fsencode("/".join(parts)), flags)
    fd = rootfd
    try:
        for i, name in enumerate(parts):
            last = i == len(parts) - 1
            nxt = os.open(name, flags if last else _DIR_FLAGS, dir_fd=fd)
            if fd != rootfd:
                os.close(fd)
            fd = nxt
    except BaseException:
        if fd != rootfd:
            os.close(fd)
        raise
    return fd


def _rename_noreplace(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
    """Rename that fails with EEXIST instead of replacing ``dst``; never replaces."""
    if _renameat2 is not None:
        if _renameat2(src_fd, os.fsencode(src), dst_fd, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        # EINVAL: this filesystem lacks the flag; ENOSYS/EPERM: no such call, or filtered.
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EPERM):
            raise OSError(err, os.strerror(err), dst)
    # linkat fails with EEXIST if dst exists; the source name is then removed.
    os.link(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd, follow_symlinks=False)
    os.unlink(src, dir_fd=src_fd)


class HomeFS(AbstractedFS):
    """pyftpdlib's filesystem interface over one home, contained by construction (see module doc).

    pyftpdlib hands every method a "real" path built by ``ftp2fs`` (``<root>/<normalised virtual
    path>``); :meth:`_parts` turns it back into names below the home, and the home descriptor,
    not the root *string*, is where resolution starts.
    """

    # Open regular files whose link count is above 1 (server.allow_hard_links; the session's
    # handler carries the setting current when the session started).
    allow_hard_links = False

    def __init__(self, root: str, cmd_channel) -> None:
        root = os.path.normpath(root)
        super().__init__(root, cmd_channel)
        self.allow_hard_links = bool(getattr(cmd_channel, "allow_hard_links", False))
        self._homefd = -1
        self._close_home = lambda: None
        self._part_dirs: dict[str, int] = {}  # upload temporary path -> its directory (O_PATH)
        try:
            fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return  # removed since the users were loaded: every operation says so (_parts)
        self._homefd = fd
        # The one owner of the descriptor: runs once, at close() or when the object goes.
        self._close_home = weakref.finalize(self, os.close, fd)

    def close(self) -> None:
        """Release the home descriptor (the session ended) and those of upload directories."""
        for path in list(self._part_dirs):
            self.forget_part(path)
        self._close_home()
        self._homefd = -1

    # --- path handling -------------------------------------------------------------------
    def validpath(self, path: str) -> bool:
        """Lexical only (pyftpdlib's pre-check and ``fs2ftp``); resolution is the boundary."""
        if "\0" in path:
            return False
        root = self.root
        return path == root or path.startswith(root.rstrip(os.sep) + os.sep)

    def realpath(self, path: str) -> str:
        """Links are never followed, so a path is its own canonical form."""
        return path

    def _parts(self, path: str) -> list[str]:
        if self._homefd < 0:
            raise FilesystemError("home directory unavailable")
        if "\0" in path:
            raise FilesystemError("NUL byte in path")
        if not self.validpath(path):
            raise FilesystemError("path outside the home directory")
        parts = [p for p in path[len(self.root) :].split(os.sep) if p]
        if any(p in (".", "..") for p in parts):  # ftp2fs never produces them; refuse anyway
            raise FilesystemError("invalid path")
        return parts

    @contextlib.contextmanager
    def _dir(self, parts: list[str], flags: int = _DIR_FLAGS) -> Iterator[int]:
        fd = open_beneath(self._homefd, parts, flags) if parts or flags != _DIR_FLAGS else self._homefd
        try:
            yield fd
        finally:
            if fd != self._homefd:
                os.close(fd)

    @contextlib.contextmanager
    def _parent(self, path: str) -> Iterator[tuple[int, str]]:
        """(descriptor of the containing directory, last name); the home itself has no name."""
        parts = self._parts(path)
        if not parts:
            raise FilesystemError("not permitted on the home directory")
        with self._dir(parts[:-1]) as fd:
            yield fd, parts[-1]

    # --- files -----------------------------------------------------------------------------
    def _opener(self, path: str, flags: int) -> int:
        part_dir = -1
        with self._parent(path) as (dirfd, name):
            # O_TRUNC only after the checks below: a refused file is never changed.
            fd = os.open(name, (flags & ~os.O_TRUNC) | _FILE_FLAGS | os.O_NONBLOCK, 0o666, dir_fd=dirfd)
            if PART_NAME.fullmatch(name):
                try:
                    part_dir = os.dup(dirfd)  # where it is, whatever renames come (remove_part)
                except OSError:
                    os.close(fd)
                    raise
        try:
            if part_dir >= 0:
                # An upload in progress holds a lock on its temporary file for as long as it is
                # open; the kernel drops it when the process dies, so a sweep can tell a dead
                # worker's leftover (unlocked) from a live upload (ftpsd.partials).
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise FilesystemError("not a regular file")
            if info.st_nlink > 1 and not self.allow_hard_links:
                # Another name of this inode may be outside the home (a local account's hard
                # link): reading or writing it would reach that file. Refused by default.
                raise FilesystemError("Refused: the file has other hard links")
            if flags & os.O_TRUNC:
                os.ftruncate(fd, 0)
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            if part_dir >= 0:
                os.close(part_dir)
            raise
        if part_dir >= 0:
            self.forget_part(path)  # a path opened again (never, names are random) keeps one
            self._part_dirs[path] = part_dir
        return fd

    def remove_part(self, path: str) -> None:
        """Remove an upload's temporary file from the directory it was created in, even if that
        directory was renamed since (its path then leads elsewhere, or nowhere: the file used to
        stay there, hidden and unaddressable, until the next sweep, and its directory could not
        be removed). A path this session did not create is removed by path."""
        dirfd = self._part_dirs.pop(path, -1)
        if dirfd < 0:
            self.remove(path)
            return
        try:
            os.unlink(os.path.basename(path), dir_fd=dirfd)
        finally:
            os.close(dirfd)

    def forget_part(self, path: str) -> None:
        """The upload of ``path`` is over (committed): drop its directory's descriptor."""
        dirfd = self._part_dirs.pop(path, -1)
        if dirfd >= 0:
            os.close(dirfd)

    def open(self, filename: str, mode: str):
        """A regular file below the home; O_NOFOLLOW everywhere, never a FIFO or device.

        A file opened for reading (``rb``: RETR) is unbuffered (``io.FileIO``): its only reader,
        pyftpdlib's ``FileProducer``, reads chunks of 64-256 KiB, larger than a buffer. A
        ``BufferedReader`` added per transfer an ``isatty`` probe and a ``tell`` when opened and a
        second ``read`` per chunk (it reads until the chunk is full or EOF): three system calls
        for nothing per small file."""
        self._parts(filename)  # refuses a NUL byte before open() would raise ValueError
        if mode == "rb":
            return open(filename, mode, buffering=0, opener=self._opener)
        return open(filename, mode, opener=self._opener)

    def mkstemp(self, suffix: str = "", prefix: str = "", dir: str | None = None, mode: str = "wb"):
        """STOU: a new file with a unique name, created with O_EXCL in ``dir`` below the home."""
        directory = self.root if dir is None else dir
        for _attempt in range(50):
            name = f"{prefix}{secrets.token_hex(4)}{suffix}"
            path = os.path.join(directory, name)
            self._parts(path)  # a NUL byte (from the client's prefix) is refused, not raised
            try:
                file = open(path, mode.replace("w", "x"), opener=self._opener)  # noqa: SIM115
            except FileExistsError:
                continue
            return file  # its name is the path pyftpdlib reports and logs
        raise FilesystemError("no usable unique file name found")

    # --- directories ---------------------------------------------------------------------
    def chdir(self, path: str) -> None:
        with self._dir(self._parts(path)):
            pass  # it exists, is a directory and is reachable without a link
        self.cwd = self.fs2ftp(path)

    def mkdir(self, path: str) -> None:
        with self._parent(path) as (dirfd, name):
            os.mkdir(name, dir_fd=dirfd)

    def listdir(self, path: str) -> list[str]:
        """The names in a directory, without uploads in progress (or left over by a worker that
        died): every listing (LIST, NLST, MLSD, STAT of a directory) comes from here, and a
        name a client cannot address is not shown to it either."""
        with self._dir(self._parts(path), LIST_FLAGS) as fd:
            return [name for name in os.listdir(fd) if not PART_NAME.fullmatch(name)]

    listdirinfo = listdir

    def rmdir(self, path: str) -> None:
        with self._parent(path) as (dirfd, name):
            os.rmdir(name, dir_fd=dirfd)

    def remove(self, path: str) -> None:
        with self._parent(path) as (dirfd, name):
            os.unlink(name, dir_fd=dirfd)

    def rename(self, src: str, dst: str) -> None:
        self._rename(src, dst, replace=True)

    def rename_noreplace(self, src: str, dst: str) -> None:
        """Like :meth:`rename`, but EEXIST instead of replacing an existing ``dst``."""
        self._rename(src, dst, replace=False)

    def _rename(self, src: str, dst: str, replace: bool) -> None:
        with self._parent(src) as (sfd, sname), self._parent(dst) as (dfd, dname):
            if replace:
                os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
            else:
                _rename_noreplace(sfd, sname, dfd, dname)

    def chmod(self, path: str, mode: int) -> None:
        raise FilesystemError("changing modes is not supported")  # SITE CHMOD is never granted

    # --- metadata (never of a link's target) -----------------------------------------------
    def lstat(self, path: str) -> os.stat_result:
        parts = self._parts(path)
        if not parts:
            return os.stat(self._homefd)
        with self._dir(parts[:-1]) as dirfd:
            return os.stat(parts[-1], dir_fd=dirfd, follow_symlinks=False)

    stat = lstat  # a link is described as itself

    def identity(self, path: str) -> tuple[int, int]:
        """(st_dev, st_ino) of the entry itself, to tell whether a name still means it."""
        st = self.lstat(path)
        return st.st_dev, st.st_ino

    def utime(self, path: str, timeval: float) -> None:
        with self._parent(path) as (dirfd, name):
            os.utime(name, (timeval, timeval), dir_fd=dirfd, follow_symlinks=False)

    def _mode(self, path: str) -> int:
        try:
            return self.lstat(path).st_mode
        except (OSError, FilesystemError):
            return 0

    def isfile(self, path: str) -> bool:
        return stat.S_ISREG(self._mode(path))

    def isdir(self, path: str) -> bool:
        return stat.S_ISDIR(self._mode(path))

    def islink(self, path: str) -> bool:
        return stat.S_ISLNK(self._mode(path))

    def lexists(self, path: str) -> bool:
        return self._mode(path) != 0

    def getsize(self, path: str) -> int:
        return self.lstat(path).st_size

    def getmtime(self, path: str) -> float:
        return self.lstat(path).st_mtime

    def readlink(self, path: str) -> str:
        raise FilesystemError("link targets are not disclosed")

    # --- listings: one directory descriptor per listing, entries stat'ed relative to it -----
    def _entries(
        self, basedir: str, names: list[str], ignore_err: bool
    ) -> Iterator[tuple[str, os.stat_result]]:
        fd = -1
        try:
            for name in names:
                try:
                    if os.path.join(basedir, name) == self.root:  # MLST / : the home itself
                        st = os.stat(self._homefd)
                    else:
                        if fd < 0:
                            fd = open_beneath(self._homefd, self._parts(basedir))
                        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except (OSError, FilesystemError, ValueError):
                    if ignore_err:
                        continue
                    raise
                yield name, st
        finally:
            if fd >= 0:
                os.close(fd)

    def format_list(self, basedir: str, listing: list[str], ignore_err: bool = True) -> Iterator[bytes]:
        """``ls -l`` lines like pyftpdlib's, from ``lstat`` only and without link targets."""
        user = memoize(self.get_user_by_uid)
        group = memoize(self.get_group_by_gid)
        timefunc = time.gmtime if self.cmd_channel.use_gmt_times else time.localtime
        now = time.time()
        for name, st in self._entries(basedir, listing, ignore_err):
            fmt = "%d  %Y" if now - st.st_mtime > 180 * 24 * 60 * 60 else "%d %H:%M"
            try:
                mtime = timefunc(st.st_mtime)
                when = f"{_months_map[mtime.tm_mon]} {time.strftime(fmt, mtime)}"
            except (ValueError, OverflowError):
                mtime = timefunc()
                when = f"{_months_map[mtime.tm_mon]} {time.strftime('%d %H:%M', mtime)}"
            line = "%s %3s %-8s %-8s %8s %s %s\r\n" % (  # noqa: UP031 - ls's fixed layout
                stat.filemode(st.st_mode),
                st.st_nlink or 1,
                user(st.st_uid),
                group(st.st_gid),
                st.st_size,
                when,
                escape_name(name),  # one line per entry, whatever the name holds
            )
            yield line.encode(self.cmd_channel.encoding, self.cmd_channel.unicode_errors)

    def format_mlsx(
        self, basedir: str, listing: list[str], perms: str, facts: str, ignore_err: bool = True
    ) -> Iterator[bytes]:
        """RFC 3659 facts like pyftpdlib's, from ``lstat``: a link is ``type=OS.unix=slink``."""
        timefunc = time.gmtime if self.cmd_channel.use_gmt_times else time.localtime
        permdir = "".join(x for x in perms if x not in "arw")
        permfile = "".join(x for x in perms if x not in "celmp")
        if "w" in perms or "a" in perms or "f" in perms:
            permdir += "c"
        if "d" in perms:
            permdir += "p"
        for name, st in self._entries(basedir, listing, ignore_err):
            out: dict[str, object] = {}
            kind = stat.S_IFMT(st.st_mode)
            if kind == stat.S_IFDIR:
                out["type"] = {".": "cdir", "..": "pdir"}.get(name, "dir")
                out["perm"] = permdir
            elif kind == stat.S_IFLNK:
                out["type"] = "OS.unix=slink"
                out["perm"] = ""
            else:
                out["type"] = "file"
                out["perm"] = permfile
            out["size"] = st.st_size
            with contextlib.suppress(ValueError, OverflowError):
                out["modify"] = time.strftime("%Y%m%d%H%M%S", timefunc(st.st_mtime))
            with contextlib.suppress(ValueError, OverflowError):
                out["create"] = time.strftime("%Y%m%d%H%M%S", timefunc(st.st_ctime))
            out["unix.mode"] = oct(st.st_mode & 0o777)
            out["unix.uid"] = st.st_uid
            out["unix.gid"] = st.st_gid
            out["unique"] = f"{st.st_dev:x}g{st.st_ino:x}"
            shown = "".join(f"{k}={out[k]};" for k in sorted(out) if k in facts)
            yield f"{shown} {escape_name(name)}\r\n".encode(
                self.cmd_channel.encoding, self.cmd_channel.unicode_errors
            )
