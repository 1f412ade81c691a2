# Sphinx configuration of the documentation site (lab/docs-site.sh): antsibull-docs' pages of
# the collection (modules, filters, roles) in rst/, the guides (docs/*.md, MyST) and the
# playbooks page written by lab/docs_site.py. Built with `sphinx-build -W`: a warning fails.
# No intersphinx: the build must not need the network.
project = "ftpskit.ftps"
copyright = "ftps-kit developers"
title = "ftpskit.ftps documentation"
html_short_title = title
html_title = title
extensions = ["sphinx_antsibull_ext", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
pygments_style = "ansible"
highlight_language = "YAML+Jinja"
html_theme = "sphinx_ansible_theme"
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False
default_role = "any"
nitpicky = True
# GitHub-style anchors for the guides' headings, so their `file.md#heading` links resolve.
myst_heading_anchors = 6
