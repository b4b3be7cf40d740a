"""Errors that the command line reports as one line, without a traceback."""


class UserError(Exception):
    """A mistake in the user's input: the message says what is wrong and how to fix it.

    The CLI prints ``error: <message>`` and exits with status 2. Library code raises it for bad
    files, folders, checkpoints and settings; programming errors stay ordinary exceptions.
    """
