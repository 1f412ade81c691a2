"""ftpsd.homefs: every method, a symlink in every position, "..", absolute paths, NUL, long names.

Each test runs twice: with openat2 and with the component-by-component fallback walk.
"""

from __future__ import annotations

import errno
import gc
import io
import os
import pathlib
import stat

import pytest
from pyftpdlib.exceptions import FilesystemError
from pyftpdlib.handlers.ftp.producers import FileProducer

from ftpsd import homefs
from ftpsd.homefs import HomeFS

REFUSED = (OSError, FilesystemError)


class _Channel:
    """The few attributes HomeFS reads from its command channel."""

    use_gmt_times = True
    encoding = "utf8"
    unicode_errors = "replace"


@pytest.fixture(params=["openat2", "walk"])
def resolver(request, monkeypatch) -> str:
    if request.param == "openat2" and not homefs.openat2_available():
        pytest.skip("this kernel has no openat2")
    monkeypatch.setattr(homefs, "_openat2_works", request.param == "openat2")
    return request.param


@pytest.fixture
def tree(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    home = tmp_path / "home"
    (home / "sub" / "deep").mkdir(parents=True)
    (home / "sub" / "f.txt").write_text("in")
    (home / "sub" / "deep" / "g.txt").write_text("deep")
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret").write_text("OUTSIDE")
    (outside / "dir" / "x").write_text("OUTSIDE-X")
    os.symlink(outside, home / "dl")  # a directory link out
    os.symlink(outside / "secret", home / "fl")  # a file link out
    os.symlink(outside, home / "sub" / "dl2")
    os.symlink("sub", home / "inner")  # links that stay inside are not followed either
    os.symlink("f.txt", home / "sub" / "innerf")
    os.symlink("nowhere", home / "dangling")
    return home, outside


@pytest.fixture
def fs(resolver: str, tree) -> HomeFS:
    home, _ = tree
    result = HomeFS(str(home), _Channel())
    yield result
    result.close()


def _snapshot(top: pathlib.Path) -> dict[str, tuple]:
    out = {}
    for path in sorted(top.rglob("*")):
        st = path.lstat()
        data = path.read_bytes() if stat.S_ISREG(st.st_mode) else b""
        out[str(path.relative_to(top))] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, data)
    return out


# A symlink before the last component: every operation must be refused.
THROUGH = ["dl/secret", "dl/dir/x", "dl/dir", "sub/dl2/secret", "inner/f.txt", "inner/deep/g.txt", "fl/x"]
# A symlink as the last component: it is an entry like any other, never followed.
LAST = ["fl", "dl", "sub/innerf", "inner", "dangling"]


def _operations(fs: HomeFS, path: str):
    real = fs.ftp2fs(path)
    other = fs.ftp2fs("sub/f.txt")
    return {
        "open rb": lambda: fs.open(real, "rb").read(),
        "open wb": lambda: fs.open(real, "wb").write(b"w"),
        "open ab": lambda: fs.open(real, "ab").write(b"a"),
        "open r+b": lambda: fs.open(real, "r+b").write(b"r"),
        "mkdir": lambda: fs.mkdir(real),
        "rmdir": lambda: fs.rmdir(real),
        "remove": lambda: fs.remove(real),
        "rename src": lambda: fs.rename(real, fs.ftp2fs("moved")),
        "rename dst": lambda: fs.rename(other, real),
        "rename_noreplace dst": lambda: fs.rename_noreplace(other, real),
        "lstat": lambda: fs.lstat(real),
        "stat": lambda: fs.stat(real),
        "listdir": lambda: fs.listdir(real),
        "chdir": lambda: fs.chdir(real),
        "utime": lambda: fs.utime(real, 0),
        "mkstemp": lambda: fs.mkstemp(prefix="t.", dir=real).write(b"t"),
        "getsize": lambda: fs.getsize(real),
        "getmtime": lambda: fs.getmtime(real),
        "identity": lambda: fs.identity(real),
        "format_list dir": lambda: list(fs.format_list(real, ["secret", "x", "f.txt"], ignore_err=False)),
        "format_mlsx dir": lambda: list(
            fs.format_mlsx(real, ["secret", "x"], "elr", ["size"], ignore_err=False)
        ),
    }


@pytest.mark.parametrize("path", THROUGH)
def test_a_link_on_the_path_refuses_every_operation(fs: HomeFS, tree, path: str) -> None:
    home, outside = tree
    before = _snapshot(outside)
    for name, operation in _operations(fs, path).items():
        with pytest.raises(REFUSED):
            operation()
            pytest.fail(f"{name} {path} succeeded")
        assert _snapshot(outside) == before, name
    for predicate in (fs.isfile, fs.isdir, fs.islink, fs.lexists):
        assert predicate(fs.ftp2fs(path)) is False
    assert not (home / "moved").exists()


@pytest.mark.parametrize("path", LAST)
def test_a_link_as_the_last_name_is_never_followed(fs: HomeFS, tree, path: str) -> None:
    home, outside = tree
    before = _snapshot(outside)
    real = fs.ftp2fs(path)
    for name in (
        "open rb",
        "open wb",
        "open ab",
        "open r+b",
        "listdir",
        "chdir",
        "mkstemp",
        "format_mlsx dir",
    ):
        with pytest.raises(REFUSED):
            _operations(fs, path)[name]()
            pytest.fail(f"{name} {path} succeeded")
    # What it describes is the link itself.
    st = fs.lstat(real)
    assert stat.S_ISLNK(st.st_mode) and st.st_size == len(os.readlink(home / path))
    assert fs.islink(real) and not fs.isfile(real) and not fs.isdir(real) and fs.lexists(real)
    assert fs.getsize(real) == st.st_size
    with pytest.raises(FilesystemError):
        fs.readlink(real)
    fs.utime(real, 1_000_000)  # the link's own times (utimensat with AT_SYMLINK_NOFOLLOW)
    assert os.lstat(home / path).st_mtime == 1_000_000
    # Renaming and removing act on the link too.
    fs.rename(real, fs.ftp2fs("moved"))
    assert (home / "moved").is_symlink()
    fs.remove(fs.ftp2fs("moved"))
    assert not os.path.lexists(home / "moved")
    assert _snapshot(outside) == before


@pytest.mark.parametrize(
    ("ftp_path", "expected"),
    [
        ("../../../../etc/passwd", "etc/passwd"),
        ("/../outside/secret", "outside/secret"),
        ("/sub/../sub/./f.txt", "sub/f.txt"),
        ("..\\outside", "..\\outside"),
        ("//sub//f.txt", "sub/f.txt"),
    ],
)
def test_dot_dot_and_absolute_paths_stay_in_the_home(fs: HomeFS, tree, ftp_path: str, expected: str) -> None:
    home, _ = tree
    real = fs.ftp2fs(ftp_path)
    assert real == str(home / expected)
    if expected == "sub/f.txt":
        assert fs.open(real, "rb").read() == b"in"
    else:
        with pytest.raises(FileNotFoundError):
            fs.open(real, "rb")


def test_paths_not_built_by_ftp2fs_are_refused(fs: HomeFS, tree) -> None:
    home, outside = tree
    for path in (str(outside / "secret"), str(home) + "x/secret", str(home) + "/../outside/secret"):
        with pytest.raises(FilesystemError):
            fs.open(path, "rb")
        with pytest.raises(FilesystemError):
            fs.lstat(path)


def test_nul_byte_is_refused_by_every_method(fs: HomeFS) -> None:
    path = fs.ftp2fs("sub/a\0b")
    assert fs.validpath(path) is False
    for name, operation in _operations(fs, "sub/a\0b").items():
        if name in ("format_list dir", "format_mlsx dir"):
            continue
        with pytest.raises(FilesystemError):
            operation()
            pytest.fail(name)
    with pytest.raises(FilesystemError):
        fs.mkstemp(prefix="a\0b.", dir=fs.ftp2fs("sub"))
    assert not fs.lexists(path) and not fs.isfile(path)


def test_overlong_names_and_paths_are_errors_not_crashes(fs: HomeFS) -> None:
    long_name = fs.ftp2fs("sub/" + "n" * 300)
    with pytest.raises(OSError) as info:
        fs.open(long_name, "wb")
    assert info.value.errno == errno.ENAMETOOLONG
    deep = fs.ftp2fs("/".join(["d" * 200] * 30))  # 6 kB, beyond PATH_MAX
    for operation in (lambda: fs.open(deep, "rb"), lambda: fs.lstat(deep), lambda: fs.mkdir(deep)):
        with pytest.raises(OSError):
            operation()


def test_plain_operations_work(fs: HomeFS, tree) -> None:
    home, _ = tree
    root = fs.root
    assert sorted(fs.listdir(root)) == ["dangling", "dl", "fl", "inner", "sub"]
    fs.mkdir(fs.ftp2fs("new"))
    with fs.open(fs.ftp2fs("new/a.bin"), "wb") as handle:
        assert handle.name == fs.ftp2fs("new/a.bin")
        handle.write(b"abc")
    with fs.open(fs.ftp2fs("new/a.bin"), "ab") as handle:
        handle.write(b"d")
    assert fs.getsize(fs.ftp2fs("new/a.bin")) == 4
    assert fs.isfile(fs.ftp2fs("new/a.bin")) and fs.isdir(fs.ftp2fs("new"))
    fs.utime(fs.ftp2fs("new/a.bin"), 1_000_000)
    assert fs.getmtime(fs.ftp2fs("new/a.bin")) == 1_000_000
    fs.chdir(fs.ftp2fs("new"))
    assert fs.cwd == "/new"
    fs.chdir(fs.ftp2fs("/"))
    fs.rename(fs.ftp2fs("new/a.bin"), fs.ftp2fs("sub/a.bin"))
    assert (home / "sub" / "a.bin").read_bytes() == b"abcd"
    fs.rename(fs.ftp2fs("sub/a.bin"), fs.ftp2fs("sub/f.txt"))  # rename replaces
    assert (home / "sub" / "f.txt").read_bytes() == b"abcd"
    (home / "sub" / "b.txt").write_text("b")
    with pytest.raises(FileExistsError):
        fs.rename_noreplace(fs.ftp2fs("sub/b.txt"), fs.ftp2fs("sub/f.txt"))
    assert (home / "sub" / "f.txt").read_bytes() == b"abcd"
    fs.rename_noreplace(fs.ftp2fs("sub/b.txt"), fs.ftp2fs("sub/c.txt"))
    assert (home / "sub" / "c.txt").read_text() == "b"
    fs.remove(fs.ftp2fs("sub/c.txt"))
    fs.rmdir(fs.ftp2fs("new"))
    assert sorted(p.name for p in home.iterdir()) == ["dangling", "dl", "fl", "inner", "sub"]


def test_the_home_itself(fs: HomeFS, tree) -> None:
    home, _ = tree
    root = fs.root
    assert fs.isdir(root) and fs.lstat(root).st_ino == os.stat(home).st_ino
    for operation in (
        lambda: fs.remove(root),
        lambda: fs.rmdir(root),
        lambda: fs.rename(root, fs.ftp2fs("x")),
        lambda: fs.rename(fs.ftp2fs("sub"), root),
        lambda: fs.open(root, "rb"),
    ):
        with pytest.raises(REFUSED):
            operation()
    # MLST / lists the home under its own name (pyftpdlib splits it from its parent).
    line = b"".join(fs.format_mlsx(os.path.dirname(root), [os.path.basename(root)], "el", ["type"]))
    assert line == b"type=dir; " + os.path.basename(root).encode() + b"\r\n"


def test_mkstemp_creates_new_files_only(fs: HomeFS, tree, monkeypatch) -> None:
    home, _ = tree
    names = set()
    for _ in range(5):
        with fs.mkstemp(prefix="up.", dir=fs.ftp2fs("sub")) as handle:
            names.add(handle.name)
    assert len(names) == 5 and all(os.path.dirname(n) == str(home / "sub") for n in names)
    monkeypatch.setattr(homefs.secrets, "token_hex", lambda n: "same")
    (home / "sub" / "up.same").write_text("keep")
    with pytest.raises(FilesystemError):
        fs.mkstemp(prefix="up.", dir=fs.ftp2fs("sub"))
    assert (home / "sub" / "up.same").read_text() == "keep"


def test_listings_describe_links_as_links(fs: HomeFS, tree) -> None:
    home, outside = tree
    names = sorted(fs.listdir(fs.root))
    mlsd = b"".join(fs.format_mlsx(fs.root, names, "elr", ["type", "size", "unique"])).decode()
    out = os.stat(outside / "secret")
    assert f"unique={out.st_dev:x}g{out.st_ino:x}" not in mlsd
    lines = mlsd.splitlines()
    for name in ("dl", "fl", "inner", "dangling"):
        line = next(line for line in lines if line.endswith(" " + name))
        assert "type=OS.unix=slink;" in line
        assert f"size={len(os.readlink(home / name))};" in line  # the link's own size
    listing = b"".join(fs.format_list(fs.root, names)).decode().splitlines()
    assert [line.split()[-1] for line in listing] == names
    assert all(line.startswith("l") for line in listing if line.split()[-1] != "sub")
    assert "->" not in "".join(listing) and str(outside) not in "".join(listing)


def test_a_home_swapped_after_login_does_not_move_the_session(fs: HomeFS, tree) -> None:
    home, outside = tree
    home.rename(home.with_name("home.moved"))
    os.symlink(outside, home)  # the configured path now leads out
    assert "sub" in fs.listdir(fs.root)
    assert fs.open(fs.ftp2fs("sub/f.txt"), "rb").read() == b"in"


def test_close_releases_the_home_descriptor(resolver: str, tree) -> None:
    home, _ = tree
    fds = len(os.listdir("/proc/self/fd"))
    fs = HomeFS(str(home), _Channel())
    assert len(os.listdir("/proc/self/fd")) == fds + 1
    fs.close()
    fs.close()  # twice is harmless (never closes a reused descriptor number)
    assert len(os.listdir("/proc/self/fd")) == fds
    with pytest.raises(FilesystemError):
        fs.listdir(fs.root)
    dropped = HomeFS(str(home), _Channel())
    del dropped
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == fds


def test_a_missing_home_fails_every_operation_cleanly(resolver: str, tmp_path: pathlib.Path) -> None:
    fs = HomeFS(str(tmp_path / "gone"), _Channel())
    with pytest.raises(FilesystemError):
        fs.listdir(fs.root)
    assert fs.isdir(fs.root) is False


def test_fifo_is_refused_without_blocking(fs: HomeFS, tree) -> None:
    home, _ = tree
    os.mkfifo(home / "pipe")
    with pytest.raises(FilesystemError):
        fs.open(fs.ftp2fs("pipe"), "rb")


def test_noreplace_fallback_is_link_and_unlink(fs: HomeFS, tree, monkeypatch) -> None:
    home, _ = tree
    monkeypatch.setattr(homefs, "_renameat2", None)
    (home / "sub" / "b.txt").write_text("b")
    with pytest.raises(FileExistsError):
        fs.rename_noreplace(fs.ftp2fs("sub/b.txt"), fs.ftp2fs("sub/f.txt"))
    assert (home / "sub" / "f.txt").read_text() == "in"
    fs.rename_noreplace(fs.ftp2fs("sub/b.txt"), fs.ftp2fs("sub/c.txt"))
    assert (home / "sub" / "c.txt").read_text() == "b" and not (home / "sub" / "b.txt").exists()


@pytest.mark.parametrize("size", [0, 1, 4096, 65536, 65537, 300_000])
@pytest.mark.parametrize("offset", [0, 1, 4095])
def test_a_file_for_retr_is_read_unbuffered_and_whole(fs: HomeFS, tree, size: int, offset: int) -> None:
    """RETR's file (mode ``rb``) is a raw ``FileIO``: no ``BufferedReader`` (an ``isatty`` probe
    and a ``tell`` at open, a second ``read`` per chunk); pyftpdlib's ``FileProducer`` still
    yields every byte from the REST offset on, in order, then EOF. Fails on the old code (a
    ``BufferedReader``)."""
    home, _ = tree
    data = os.urandom(size)
    (home / "sub" / "r.bin").write_bytes(data)
    with fs.open(fs.ftp2fs("sub/r.bin"), "rb") as handle:
        assert type(handle) is io.FileIO
        start = offset if offset <= size else 0  # pyftpdlib answers 554 past the end
        handle.seek(start)
        producer = FileProducer(handle, "i")
        chunks = []
        while chunk := producer.more():
            chunks.append(chunk)
        assert b"".join(chunks) == data[start:]
    for mode in ("wb", "ab", "r+b"):  # writers keep their buffer
        with fs.open(fs.ftp2fs("sub/r.bin"), mode) as handle:
            assert isinstance(handle, io.BufferedIOBase)


def test_listings_leave_out_upload_temporary_names(fs: HomeFS, tree) -> None:
    home, _ = tree
    (home / "sub" / ".f.txt.0123456789ab.ftpsd-part").write_text("upload in progress")
    (home / "sub" / "f.txt.0123456789ab.ftpsd-part").write_text("a client's name")
    assert sorted(fs.listdir(str(home / "sub"))) == [
        "deep",
        "dl2",
        "f.txt",
        "f.txt.0123456789ab.ftpsd-part",
        "innerf",
    ]


def test_a_temporary_upload_file_is_locked_and_removed_where_it_moved(fs: HomeFS, tree) -> None:
    import fcntl

    home, _ = tree
    temp = str(home / "sub" / homefs.part_name("f.txt"))
    file = fs.open(temp, "wb")
    try:
        probe = os.open(temp, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):  # held by the upload while open
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(probe)
        os.rename(home / "sub", home / "moved")
        fs.remove_part(temp)  # its path leads nowhere now; its directory's descriptor does
        assert not [n for n in os.listdir(home / "moved") if n.endswith(".ftpsd-part")]
    finally:
        file.close()


def test_a_temporary_name_fits_in_a_name_however_long_the_name(fs: HomeFS, tree) -> None:
    for name in ("a" * 255, "é" * 127 + "a", "x"):
        temp = homefs.part_name(name)
        assert len(temp.encode()) <= 255
        assert homefs.final_name(temp) is not None
        assert name.startswith(homefs.final_name(temp))
