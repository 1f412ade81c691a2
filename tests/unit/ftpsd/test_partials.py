"""The leftover sweep (ftpsd.partials): which files are partial uploads, and what it never touches."""

from __future__ import annotations

import logging
import os
import pathlib
import time

import pytest

from ftpsd.partials import PART_NAME, LeftoverSweep

HOUR = 3600.0


@pytest.mark.parametrize(
    ("name", "is_part"),
    [
        (".report.pdf.0123456789ab.ftpsd-part", True),
        (".a.ffffffffffff.ftpsd-part", True),
        ("..hidden.0123456789ab.ftpsd-part", True),  # the upload of ".hidden"
        (".with space.0123456789ab.ftpsd-part", True),
        ("report.pdf.0123456789ab.ftpsd-part", False),  # no leading dot
        ("..0123456789ab.ftpsd-part", False),  # no name
        (".report.pdf.0123456789AB.ftpsd-part", False),  # token_hex is lower case
        (".report.pdf.0123456789a.ftpsd-part", False),  # 11 hex digits
        (".report.pdf.0123456789abc.ftpsd-part", False),  # 13 hex digits
        (".report.pdf.0123456789ab.ftpsd-part.bak", False),
        (".report.pdf.0123456789ab.ftpsd-partial", False),
        (".report.pdf.0123456789abXftpsd-part", False),
    ],
)
def test_part_name(name: str, is_part: bool) -> None:
    assert bool(PART_NAME.fullmatch(name)) is is_part


def _old(path: pathlib.Path, data: bytes = b"partial") -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time() - HOUR
    os.utime(path, (then, then))
    return path


def _sweep(homes: list[pathlib.Path], started: float | None = None) -> LeftoverSweep:
    sweep = LeftoverSweep([str(h) for h in homes], time.time() if started is None else started)
    while not sweep.step():
        pass
    return sweep


def test_removes_old_parts_at_any_depth(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    home = tmp_path / "alice"
    top = _old(home / ".a.txt.0123456789ab.ftpsd-part")
    deep = _old(home / "x" / "y" / ".b.bin.abcdefabcdef.ftpsd-part")
    real = _old(home / "x" / "b.bin")
    with caplog.at_level(logging.INFO, logger="ftpsd"):
        sweep = _sweep([home])
    assert not top.exists()
    assert not deep.exists()
    assert real.exists()
    assert sweep.removed == 2
    assert f"removed 2 partial upload(s) under {home}" in caplog.text


def test_keeps_parts_newer_than_the_start(tmp_path: pathlib.Path) -> None:
    home = tmp_path / "alice"
    live = _old(home / ".live.0123456789ab.ftpsd-part")
    os.utime(live, (time.time() + HOUR, time.time() + HOUR))  # written after the start
    _sweep([home])
    assert live.exists()


def test_never_follows_symlinks_or_leaves_the_home(tmp_path: pathlib.Path) -> None:
    home = tmp_path / "alice"
    outside = tmp_path / "outside"
    target = _old(outside / ".t.0123456789ab.ftpsd-part")
    home.mkdir()
    file_link = home / ".l.0123456789ab.ftpsd-part"
    file_link.symlink_to(target)
    (home / "linked-dir").symlink_to(outside, target_is_directory=True)
    directory = home / ".d.0123456789ab.ftpsd-part"
    directory.mkdir()
    _sweep([home])
    assert file_link.is_symlink()
    assert target.exists()
    assert directory.is_dir()


def test_a_directory_swapped_for_a_link_mid_sweep_is_not_entered(tmp_path: pathlib.Path) -> None:
    home = tmp_path / "alice"
    outside = tmp_path / "outside"
    target = _old(outside / ".t.0123456789ab.ftpsd-part")
    _old(home / "sub" / ".s.0123456789ab.ftpsd-part")
    sweep = LeftoverSweep([str(home)], time.time())
    sweep.step(0.0)  # the home's own entries: "sub" is queued as a directory
    (home / "sub").rename(home / "sub.real")
    (home / "sub").symlink_to(outside, target_is_directory=True)
    while not sweep.step():
        pass
    assert target.exists()


def test_walks_each_home_once_and_skips_missing_ones(tmp_path: pathlib.Path) -> None:
    outer = tmp_path / "srv"
    inner = outer / "bob"
    part = _old(inner / ".p.0123456789ab.ftpsd-part")
    sweep = _sweep([outer, inner, tmp_path / "missing", outer])
    assert not part.exists()
    assert sweep.removed == 1


def test_works_in_small_steps(tmp_path: pathlib.Path) -> None:
    home = tmp_path / "alice"
    parts = [_old(home / f"d{i}" / f".f{i}.0123456789ab.ftpsd-part") for i in range(20)]
    sweep = LeftoverSweep([str(home)], time.time())
    steps = 1
    while not sweep.step(0.0):  # a zero budget: one file or directory per step
        steps += 1
    assert steps > len(parts)
    assert not any(p.exists() for p in parts)


def test_keeps_parts_a_live_upload_holds_open_however_old(tmp_path: pathlib.Path) -> None:
    """After a worker's death the sweep runs while the other workers upload: their files are
    open through HomeFS, which locks a temporary upload file; only unlocked ones are leftovers."""
    from ftpsd.homefs import HomeFS

    class _Channel:
        allow_hard_links = False

    home = tmp_path / "alice"
    home.mkdir()
    fs = HomeFS(str(home), _Channel())
    live = fs.open(str(home / ".live.0123456789ab.ftpsd-part"), "wb")
    live.write(b"in progress")
    live.flush()
    _old(home / ".live.0123456789ab.ftpsd-part", b"in progress")  # an hour old: only the lock saves it
    dead = _old(home / ".dead.0123456789ab.ftpsd-part")
    try:
        sweep = _sweep([home])
        assert (home / ".live.0123456789ab.ftpsd-part").exists()
        assert not dead.exists()
        assert sweep.removed == 1
    finally:
        live.close()
        fs.close()
    _sweep([home])  # closed (its process gone, say): a leftover like any other
    assert not (home / ".live.0123456789ab.ftpsd-part").exists()
