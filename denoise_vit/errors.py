"""User-facing errors: each carries one message that names the problem.

The command line prints the message of any `DenoiseVitError` and exits with status 2, so a
mistake in a config, a path or an input never ends in a bare traceback.
"""


class DenoiseVitError(Exception):
    """Base class of the errors the command line reports as a single message."""


class ConfigError(DenoiseVitError, ValueError):
    """A configuration key or value that cannot be used (unknown key, bad size, ...)."""


class CheckpointError(DenoiseVitError):
    """A checkpoint that is missing, unreadable, corrupt, unsafe or of another model kind."""


class TrainingError(DenoiseVitError):
    """Training had to stop (non-finite loss, unwritable run folder, ...)."""


class ExportError(DenoiseVitError):
    """A model that cannot be exported as asked (format, output path, missing package)."""
