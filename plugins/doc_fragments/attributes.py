# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Documentation fragment: the check_mode and diff_mode attributes the kit's modules share.

Every module of the kit supports check mode fully; each says in its own
``attributes.check_mode.description`` what its check mode reports (the module's keys win
over the fragment's, key by key).
"""


class ModuleDocFragment:
    # A module that changes what it manages and returns the change as a diff.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    description: Returns the changes as a before/after diff.
"""

    # A module that returns no diff: it only reads, or it reports its changes in its result.
    NO_DIFF = r"""
options: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
    description: Returns no diff.
"""
