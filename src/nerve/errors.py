"""User-facing errors: the CLI prints them as one line and exits with status 2."""


class NerveError(Exception):
    """An error caused by the user's input (file, config, run folder), not by a bug."""


def where(path, line: int | None = None) -> str:
    """Format a location as ``path:line`` (or just ``path``) for error messages."""
    return f"{path}:{line}" if line is not None else str(path)
