"""The ``xpnet`` command: train, gradcheck, evaluate, data, graph, backends.

Exit codes, the same for every subcommand: 0 done; 1 the work failed (a file's contents are not
what they should be, a download failed, training diverged, a gradient check disagreed, a run
directory is in use); 2 the command line is wrong (an unknown option or value, options that do
not go together, a path that does not exist or is a file where a folder is needed, or the
reverse, a backend or device that is not there); 130 interrupted (Ctrl-C). Every error is one
line, ``xpnet: error: ...``; under ``mpiexec`` it is printed once, by rank 0.
"""

from .parser import build_parser, main

__all__ = ["build_parser", "main"]
