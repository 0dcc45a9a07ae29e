"""The book's own scripts, unedited, on xpnet: ``xpnet book SCRIPT`` (issue 19).

A reader's clone of the book's repository (``oreilly-japan/deep-learning-from-scratch``) runs
on any backend and device: :func:`~xpnet.book.runner.run_script` runs a chapter script as
``__main__`` with an import hook that resolves the book's ``common``, ``dataset.mnist`` and
chapter-local network modules to xpnet's code (:mod:`xpnet.book.modules`), never the book's.
The networks a script builds are xpnet's, placed by :func:`xpnet.defaults`
(:mod:`xpnet.book.nets`); what they hand back follows one rule (:mod:`xpnet.book.arrays`):
numbers come back as Python floats, ``predict`` on a host batch as NumPy, parameters and
gradients as :class:`~xpnet.book.arrays.HostArray` views that compute on the device and read
as NumPy (plain NumPy arrays on the NumPy backend).

Imports run one way: ``arrays`` < ``nets`` < ``modules`` < ``runner``; the package sits above
``nets``, ``training`` and ``datasets``, below ``cli``; nothing under it imports it.
"""

from .arrays import BookParams, HostArray
from .modules import BookImportError
from .runner import BookRunError, RunSettings, run_script

__all__ = ["BookImportError", "BookParams", "BookRunError", "HostArray", "RunSettings",
           "run_script"]
