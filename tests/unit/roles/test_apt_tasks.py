"""Every apt task of the kit installs its packages on a host that has no package lists.

Hosts built from minimal images (the lab's debootstrap images, most cloud images) ship an empty
/var/lib/apt/lists/ whose mtime is the image build time. apt's `cache_valid_time` judges the
cache by that mtime, so for a while after the build it skips the update and the install fails
with "No package matching ... is available" (issue 10: CI red on every new machine). The rule,
for every `ansible.builtin.apt` task that installs something in roles/, molecule/ and
playbooks/: it sets `update_cache` (always, or whenever a wanted package is missing) and never
`cache_valid_time`. Molecule `default` proves the behaviour on real hosts (its prepare.yml).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from tests.paths import ROOT

APT = {"apt", "ansible.builtin.apt", "ansible.legacy.apt"}
PLACES = ["roles", "molecule", "playbooks"]


def _tasks(node: object) -> Iterator[dict]:
    """Every task mapping in a parsed task file or playbook, blocks and plays included."""
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        if any(key in node for key in APT):
            yield node
        for key in ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always"):
            yield from _tasks(node.get(key))


def _apt_tasks() -> list[tuple[str, dict]]:
    found = []
    for place in PLACES:
        for path in sorted((ROOT / place).rglob("*.yml")):
            if "/.cache/" in str(path):
                continue
            doc = yaml.safe_load(path.read_text())
            for task in _tasks(doc):
                args = next(task[key] for key in APT if key in task)
                found.append((f"{path.relative_to(ROOT)}: {task.get('name', '?')}", args))
    return found


APT_TASKS = _apt_tasks()


def test_the_kit_has_apt_tasks_to_check() -> None:
    # The walker above must see the roles' installs; if it finds none, it is broken.
    assert len(APT_TASKS) >= 5, APT_TASKS


@pytest.mark.parametrize(("where", "args"), APT_TASKS, ids=[w for w, _ in APT_TASKS])
def test_apt_installs_refresh_lists_without_trusting_their_age(where: str, args: dict) -> None:
    assert isinstance(args, dict), f"{where}: use the mapping form of ansible.builtin.apt"
    assert "cache_valid_time" not in args, (
        f"{where}: cache_valid_time judges empty package lists by the directory's mtime; "
        "refresh when a wanted package is missing instead"
    )
    if args.get("state", "present") in {"present", "latest", "fixed", "build-dep"} and args.get("name"):
        assert "update_cache" in args, (
            f"{where}: installs {args['name']!r} without update_cache: fails on a host with "
            "no package lists (minimal images)"
        )
        assert args["update_cache"] not in (False, "false", "no"), where
