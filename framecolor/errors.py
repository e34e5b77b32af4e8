"""The error type the CLI turns into a one-line message and a non-zero exit (never a traceback)."""


class UserError(Exception):
    """Bad input, bad options or an environment problem the user can act on."""

    exit_code = 2


class MediaError(UserError):
    """A file that cannot be read or written as media (missing stream, corrupt or truncated data)."""

    exit_code = 3


class StorageError(UserError):
    """The system refused a write: the disk is full, a quota is reached, the disk failed (exit 1)."""

    exit_code = 1
