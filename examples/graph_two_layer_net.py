"""Draw a 784-50-10 TwoLayerNet on 3 random samples as its layers (the book's section 5.7):
array shapes above the arrows, the gradients' shapes below them in red.

    python examples/graph_two_layer_net.py [OUT]

OUT is a .svg, .png or .dot path (default: two-layer-net.svg in the current folder). SVG and PNG
need Graphviz's ``dot``; without it the DOT text is written instead, with a note on how to
install Graphviz.
"""

import sys

from xpnet.graph import render_example

if sys.argv[1:2] in (["-h"], ["--help"]):
    sys.exit(print(__doc__))  # not a file named --help.dot
out = sys.argv[1] if len(sys.argv) > 1 else None
path = render_example("two-layer-net", fmt=None, out=out)
print(f"wrote {path}")
