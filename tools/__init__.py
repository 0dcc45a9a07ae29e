"""Developer tools that are not part of the xpnet package: ``python -m tools.mutants``
(mutation testing, ``nox -s mutants``)."""
