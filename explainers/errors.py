"""The one exception type that means "the user's input is wrong", not "the code is wrong"."""


class ExplainerError(ValueError):
    """A problem with the user's input, with a one-line message in plain words.

    The CLI prints it as ``error: <message>`` and exits with status 2; the dashboard shows it
    with ``st.error``. Anything else escaping is a bug.
    """
