"""Sphinx configuration: the API reference, generated from xpnet's docstrings.

``nox -s docs`` (and CI) builds it with warnings as errors: a docstring that does not render is
a failure.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from xpnet import __version__

project = "xpnet"
author = "xpnet developers"
release = version = __version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
# The docstrings are numpy-style with reST inline markup; type hints are shown in signatures.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
# The optional backends are imported lazily by xpnet itself; the reference never needs them.
autodoc_mock_imports = ["cupy", "torch", "mpi4py", "tqdm", "matplotlib", "threadpoolctl"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []
