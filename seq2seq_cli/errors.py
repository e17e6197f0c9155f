"""Errors a user can cause. The CLI turns each into one ``error: ...`` line and exit code 2."""


class UserError(Exception):
    """A problem with the user's input (file, config, data, checkpoint), not a bug."""


class ConfigError(UserError):
    """A config file or override that cannot be used as it is."""


class DataError(UserError):
    """A corpus or input text that cannot be read."""


class CheckpointError(UserError):
    """A file that is not a usable checkpoint of this tool."""


class RunDirError(UserError):
    """A run directory that cannot be used (exists, missing, not writable)."""
