"""The one error type for an input that cannot give a right answer."""


class InvalidInputError(ValueError):
    """An input file or value that cannot give a right answer: malformed, truncated, corrupt, unsafe to load
    or inconsistent with what it is used for. The message names the file (and the line or key) and says what
    was expected.

    A subclass of ``ValueError``, so code that caught the readers' ``ValueError`` keeps working.
    """
