"""Errors a person can cause (a wrong name, an impossible compression, missing data).

The command line prints their message as one sentence and exits with code 2; library callers can
catch them like any ``ValueError``.
"""


class UserError(ValueError):
    """Bad input from the user: the message is one clear sentence that says what to do."""
