"""Typed errors that say what is wrong and what to do about it."""


class LookalikeError(Exception):
    """Base class of every error this package raises on purpose."""


class BadInput(LookalikeError):
    """A file that cannot be used. ``str(err)`` is a one-line reason for the error report."""


class ModelMissing(LookalikeError):
    """A converted model is not in the cache yet."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"model {name!r} is not prepared: run `lookalike models prepare` (needs the [models] extra)")

    def __reduce__(self):  # raised in worker processes: pickled by name, not by message
        return (ModelMissing, (self.name,))


class IndexMissing(LookalikeError, FileNotFoundError):
    """An index directory that does not exist, opened by a command that only reads one."""

    def __init__(self, directory):
        super().__init__(f"no index at {directory}: create it with `lookalike index PATH... --index {directory}` "
                         "(or pass the right --index DIR / LOOKALIKE_INDEX)")
