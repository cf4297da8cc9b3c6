"""Search modes, candidates and verification.

modes.py is loaded first whichever module of this package is imported (a spawned worker unpickling
`exact._file_digests` imports exact.py alone): modes.py registers the exact, similar, background and face modes at
its end, and those modules import modes.py's base classes, so entering through them would be circular.
"""

from lookalike.search import modes  # noqa: F401,E402
