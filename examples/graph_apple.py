"""Draw the book's figure 5-16, buying apples, as a computational graph with its numbers:
forward values above the arrows, backward gradients below them in red.

    python examples/graph_apple.py [OUT]

OUT is a .svg, .png or .dot path (default: apple.svg in the current folder). SVG and PNG
need Graphviz's ``dot``; without it the DOT text is written instead, with a note on how to
install Graphviz.
"""

import sys

from xpnet.graph import render_example

if sys.argv[1:2] in (["-h"], ["--help"]):
    sys.exit(print(__doc__))  # not a file named --help.dot
out = sys.argv[1] if len(sys.argv) > 1 else None
path = render_example("apple", fmt=None, out=out)
print(f"wrote {path}")
