"""User-facing errors: the CLI prints their message (no traceback) and exits non-zero."""


class RwmError(Exception):
    """Base of every error caused by input, configuration or an interrupted stage, not by a bug."""


class InputError(RwmError, ValueError):
    """An input file (dataset artifact, checkpoint, policy directory) cannot be used as it is."""
