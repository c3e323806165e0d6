"""User-facing errors: the CLI prints them as one line and exits with status 2."""


class NerveError(Exception):
    """An error caused by the user's input (file, config, run folder), not by a bug."""

