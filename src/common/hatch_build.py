"""Pack the collection's plugins/module_utils/ftpskit_common as the top-level package
``ftpskit_common`` into regular wheels only. An editable install (the controller's venv) gets no
copy: ``dev-mode-dirs`` puts the collection's module_utils on sys.path, so the one copy is what
the tests, the daemon and the modules import."""

from __future__ import annotations

import os

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class SharedPackageHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name == "wheel" and version == "standard":
            collection = os.path.dirname(os.path.dirname(self.root))  # src/common -> the collection
            shared = os.path.join(collection, "plugins", "module_utils", "ftpskit_common")
            build_data["force_include"][shared] = "ftpskit_common"
