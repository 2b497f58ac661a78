"""The one exception type for mistakes a user can fix.

The CLI prints an ``EbganError`` as a single line and exits with status 2; anything else is a bug and keeps
its traceback.
"""


class EbganError(Exception):
    """A user-facing error: bad option, missing or corrupt data file, not a run folder, ..."""
