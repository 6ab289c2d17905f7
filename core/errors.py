"""Errors that the CLI turns into one line on stderr and an exit code.

UsageError (exit 2): the user asked for something invalid (bad value, missing input).
RunFailure (exit 1): the request was valid but the run could not complete.
"""


class TrustlabError(Exception):
    exit_code = 1


class UsageError(TrustlabError):
    exit_code = 2


class RunFailure(TrustlabError):
    exit_code = 1


def require(condition: bool, message: str) -> None:
    """Raise UsageError(message) unless condition holds."""
    if not condition:
        raise UsageError(message)
