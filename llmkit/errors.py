"""User-facing errors.

Code below the CLI raises :class:`LlmkitError` with one line that names the file, field or
option at fault and says how to fix it. The CLI prints that line and exits with code 2; any
other exception is a bug and keeps its traceback.
"""


class LlmkitError(Exception):
    """A problem with the user's input: one line, what is wrong and how to fix it."""


class ConfigError(LlmkitError):
    """A recipe key, override or value that cannot be used."""


class DataError(LlmkitError):
    """A data file, column or record that cannot be used."""
