"""Where the checkout is: the one place a test file learns the repository root.

Every test, helper and benchmark imports ``ROOT`` from here instead of counting parent
directories of its own ``__file__`` (a count that breaks silently when a file moves);
``tests/unit/test_collection.py`` fails on a file that computes the root itself.
"""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
