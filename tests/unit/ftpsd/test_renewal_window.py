"""The renewal window reaches ftpsd through its configuration file (``tls.renew_before_days``),
not a hidden flag: ftps_server writes ftps_pki's ``ftps_pki_renew_before_days`` there, and
``ftpsd metrics`` / ``ftpsd reload --metrics-out`` read it unless ``--renew-before-days`` is given.
"""

from __future__ import annotations

import pathlib

import pytest

import ftpsd.__main__ as cli
import ftpsd.metrics
from ftpsd.config import ConfigError, TLSConfig, parse_config, peek_tls


def test_default_is_thirty_days() -> None:
    assert TLSConfig().renew_before_days == 30
    assert parse_config({}).tls.renew_before_days == 30


@pytest.mark.parametrize("days", [0, 7, 45, 36500])
def test_a_window_is_read(days: int) -> None:
    assert parse_config({"tls": {"renew_before_days": days}}).tls.renew_before_days == days


@pytest.mark.parametrize("bad", [-1, 36501, True, "30", 1.5])
def test_a_bad_window_is_named(bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"tls": {"renew_before_days": bad}})
    assert err.value.problems == [f"tls.renew_before_days: must be an integer 0-36500 days, got {bad!r}"]


def test_peek_reads_the_window_and_falls_back_on_nonsense(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "ftpsd.toml"
    path.write_text('[tls]\nrenew_before_days = 12\ncertfile = "/x/cert.pem"\n')
    assert peek_tls(str(path)).renew_before_days == 12
    path.write_text('[tls]\nrenew_before_days = "soon"\n')
    assert peek_tls(str(path)).renew_before_days == 30
    assert peek_tls(str(tmp_path / "missing.toml")).renew_before_days == 30


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["metrics", "--out", "OUT"], 12),  # the configuration's window
        (["metrics", "--out", "OUT", "--renew-before-days", "5"], 5),  # the documented override
        (["reload", "--metrics-out", "OUT"], 12),
        (["reload", "--metrics-out", "OUT", "--renew-before-days", "5"], 5),
    ],
)
def test_metrics_use_the_configured_window(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], expected: int
) -> None:
    config = tmp_path / "ftpsd.toml"
    config.write_text("[tls]\nrenew_before_days = 12\n")
    seen: list[int] = []
    monkeypatch.setattr(ftpsd.metrics, "write", lambda _config, _out, days: seen.append(days))
    monkeypatch.setattr(cli, "_reload", lambda *_args: 0)
    assert cli.main(["--config", str(config), *argv]) == 0
    assert seen == [expected]


def test_the_flag_is_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["reload", "--help"])
    assert "--renew-before-days" in capsys.readouterr().out
