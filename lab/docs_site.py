#!/usr/bin/env python3
"""Assemble the documentation site's Sphinx source around antsibull-docs' pages.

    lab/docs_site.py COLLECTION_DIR SOURCE_DIR

COLLECTION_DIR is the installed collection (ansible_collections/ftpskit/ftps, from the built
tarball); SOURCE_DIR already holds antsibull-docs' output (collections/ftpskit/ftps/...). This
adds the guides (COLLECTION_DIR/docs/*.md) under guides/, a playbooks page from each playbook's
leading comment and plays, and the index. A guide's link to a file outside docs/ points to the
file in the repository (galaxy.yml's `repository`); a link to a file the collection does not
ship is an error, as are two guides with the same title and a playbook without a leading comment.
"""

from __future__ import annotations

import pathlib
import re
import sys

import yaml

LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)#\s]+)(#[^)\s]*)?\)")


def guide_text(coll: pathlib.Path, guide: pathlib.Path, repository: str) -> str:
    def fix(match: re.Match) -> str:
        target, anchor = match.group(1), match.group(2) or ""
        resolved = (guide.parent / target).resolve()
        try:
            rel = resolved.relative_to(coll.resolve())
        except ValueError:
            sys.exit(f"docs_site: {guide.name}: link {target} leaves the collection")
        if not resolved.exists():
            sys.exit(f"docs_site: {guide.name}: link {target}: the collection has no {rel}")
        if rel.parent == pathlib.Path("docs") and rel.suffix == ".md":
            return match.group(0)  # another guide: Sphinx resolves it (and its anchor)
        return f"]({repository}/blob/main/{rel.as_posix()}{anchor})"

    return LINK.sub(fix, guide.read_text())


def playbooks_page(coll: pathlib.Path) -> str:
    lines = [
        "# Playbooks",
        "",
        "Run them as `ansible-playbook -i INVENTORY ftpskit.ftps.NAME`. What each one does, from its",
        "own header, and its plays:",
        "",
    ]
    for book in sorted((coll / "playbooks").glob("*.yml")):
        comment = []
        for line in book.read_text().splitlines():
            if line.startswith("---"):  # the document start, with the comment on its line if any
                rest = line[3:].strip()
                if rest.startswith("#"):
                    comment.append(rest[1:].strip())
                continue
            if not line.startswith("#"):
                break
            comment.append(line[2:] if line.startswith("# ") else line[1:])
        if not "".join(comment).strip():
            sys.exit(f"docs_site: playbooks/{book.name} has no leading comment to document it")
        plays = yaml.safe_load(book.read_text()) or []
        lines += [f"## ftpskit.ftps.{book.stem}", "", "```text", *comment, "```", ""]
        names = [p.get("name") or p.get("ansible.builtin.import_playbook") or "" for p in plays]
        lines += ["Plays:", ""] + [f"1. {n}" for n in names if n] + [""]
    return "\n".join(lines)


def main() -> None:
    coll, src = (pathlib.Path(a) for a in sys.argv[1:3])
    repository = yaml.safe_load((coll / "MANIFEST.json").read_text())["collection_info"]["repository"]
    guides = sorted((coll / "docs").glob("*.md"))
    if not guides:
        sys.exit(f"docs_site: no guides in {coll / 'docs'}")
    titles: dict[str, str] = {}
    for guide in guides:  # a guide is found by its title (navigation, search): no two alike
        title = next((ln[2:].strip() for ln in guide.read_text().splitlines() if ln.startswith("# ")), "")
        if not title:
            sys.exit(f"docs_site: docs/{guide.name} has no title (a first-level heading)")
        if title in titles:
            sys.exit(f"docs_site: docs/{guide.name} and docs/{titles[title]} have the same title {title!r}")
        titles[title] = guide.name
    (src / "guides").mkdir(exist_ok=True)
    for guide in guides:
        (src / "guides" / guide.name).write_text(guide_text(coll, guide, repository))
    (src / "playbooks.md").write_text(playbooks_page(coll))
    # antsibull-docs' pages refer to labels of Ansible's own documentation (reached through
    # intersphinx on docs.ansible.com, which this build must not need): a local page holds them.
    (src / "ansible.rst").write_text(
        "Ansible's own documentation\n===========================\n\n"
        ".. _common_return_values:\n\nCommon return values\n--------------------\n\n"
        "Every module also returns Ansible's common values (``changed``, ``failed``, ``msg``, ...):\n"
        "https://docs.ansible.com/projects/ansible/latest/reference_appendices/common_return_values.html\n\n"
        ".. _ansible_configuration_settings:\n\nConfiguration settings\n----------------------\n\n"
        "Ansible's configuration settings and their environment variables:\n"
        "https://docs.ansible.com/projects/ansible/latest/reference_appendices/config.html\n\n"
        ".. _action_plugins:\n\nAction plugins\n--------------\n\n"
        "A module with an action plugin runs (also) on the controller, not only on the managed host:\n"
        "https://docs.ansible.com/projects/ansible/latest/plugins/action.html\n"
    )
    toc = "\n".join(f"   guides/{g.stem}" for g in guides)
    (src / "index.rst").write_text(
        "ftpskit.ftps\n============\n\n"
        "The Ansible collection ``ftpskit.ftps``: FTPS servers across a fleet (internal CA, hardened\n"
        "ftpsd, virtual users, firewall, client trust) and their certificates kept healthy.\n\n"
        ".. toctree::\n   :maxdepth: 1\n   :caption: Reference\n\n"
        "   collections/index\n   playbooks\n   ansible\n\n"
        f".. toctree::\n   :maxdepth: 1\n   :caption: Guides\n\n{toc}\n"
    )


if __name__ == "__main__":
    main()
