"""The action ftps_deprecated_vars: which deprecated names are in use, the message, and that it
hands each to Ansible's own ``Display.deprecated`` with the version and the collection (which
makes "[DEPRECATION WARNING]: ... This feature will be removed from collection 'ftpskit.ftps'
version X."); bad arguments fail before anything is shown."""

from __future__ import annotations

from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.playbook.task import Task
from ansible_collections.ftpskit.ftps.plugins.action import ftps_deprecated_vars as plugin

ALIASES = {"old_a": "new_a", "old_b": "new_b (the window)", "old_c": "new_c"}


@pytest.mark.parametrize(
    ("defined", "expected"),
    [
        ({}, []),
        ({"new_a": 1, "unrelated": 2}, []),
        ({"old_c": 1, "old_a": 0}, ["old_a", "old_c"]),
        # a name set to "" or false is in use too: it is set
        ({"old_b": "", "old_a": False, "old_c": None}, ["old_a", "old_b", "old_c"]),
    ],
    ids=["none", "new-names-only", "map-order", "falsy-values"],
)
def test_deprecated_in_use(defined: dict, expected: list[str]) -> None:
    assert plugin.deprecated_in_use(ALIASES, defined) == expected


def test_message() -> None:
    assert plugin.deprecation_message("old_b", "new_b (the window)", "README.md") == (
        "The variable old_b is deprecated: use new_b (the window) instead (README.md)"
    )
    assert plugin.deprecation_message("old_a", "new_a") == (
        "The variable old_a is deprecated: use new_a instead"
    )


def _action(args: dict) -> plugin.ActionModule:
    task = Task()
    task.args = args
    return plugin.ActionModule(
        task=task,
        connection=mock.MagicMock(),
        play_context=mock.MagicMock(),
        loader=mock.MagicMock(),
        templar=mock.MagicMock(),
        shared_loader_obj=mock.MagicMock(),
    )


def test_run_warns_for_each_name_in_use() -> None:
    action = _action({"aliases": ALIASES, "version": "0.3.0", "see": "README.md"})
    with mock.patch.object(plugin.display, "deprecated") as deprecated:
        result = action.run(task_vars={"old_c": 1, "old_a": 2, "new_b": 3})
    assert result["deprecated"] == ["old_a", "old_c"]
    assert not result["changed"]
    assert deprecated.call_args_list == [
        mock.call(
            msg="The variable old_a is deprecated: use new_a instead (README.md)",
            version="0.3.0",
            collection_name="ftpskit.ftps",
        ),
        mock.call(
            msg="The variable old_c is deprecated: use new_c instead (README.md)",
            version="0.3.0",
            collection_name="ftpskit.ftps",
        ),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"aliases": ["old_a"], "version": "0.3.0"}, "aliases must be a mapping"),
        ({"aliases": {"old_a": 1}, "version": "0.3.0"}, "aliases must be a mapping"),
        ({"aliases": ALIASES}, r"version \(the collection version"),
    ],
    ids=["list", "non-string", "no-version"],
)
def test_bad_arguments_fail(args: dict, message: str) -> None:
    with (
        mock.patch.object(plugin.display, "deprecated") as deprecated,
        pytest.raises(AnsibleActionFail, match=message),
    ):
        _action(args).run(task_vars={"old_a": 1})
    deprecated.assert_not_called()
