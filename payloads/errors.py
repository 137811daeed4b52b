"""The one exception type for bad user input, shared by every package.

It lives in `payloads` because that is the bottom of the import graph; the CLI catches it and turns
it into one line on stderr and exit status 2.
"""


class InputError(ValueError):
    """Bad input from the user (arguments, files, server answers during preflight).

    The message is the whole story: one line, naming the file or argument and the problem.
    """
