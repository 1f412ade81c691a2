# Copyright: ftps-kit contributors
# MIT License
"""Controller-side helpers the kit's filters share (plugins/plugin_utils: controller only, never
shipped to a host)."""

from __future__ import annotations

from typing import Any


def as_role_int(value: Any) -> Any:
    """``value`` as the roles' ``| int`` reads it before a rule judges it: a string of ASCII digits
    is its integer; anything else is returned unchanged, for the rule to name (``"30"`` -> 30,
    ``"²"``, ``"-1"``, ``" 5"``, ``True`` unchanged)."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return value
