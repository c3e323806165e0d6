"""User-facing errors: the CLI prints them as one line and exits with status 2."""


class NerveError(Exception):
    """An error caused by the user's input (file, config, run folder), not by a bug."""



class NerveWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints it as one line)."""


def warn(message: str) -> None:
    """Issue a :class:`NerveWarning` (``nerve: warning: MESSAGE`` on the command line)."""
    import warnings

    warnings.warn(message, NerveWarning, stacklevel=2)
