"""The one exception type that means "the user's input is wrong", not "the code is wrong"."""


class ExplainerError(ValueError):
    """A problem with the user's input, with a one-line message in plain words.

    The CLI prints it as ``error: <message>`` and exits with status 2; the dashboard shows it
    with ``st.error``. Anything else escaping is a bug.
    """


def one_line(exc: BaseException, limit: int = 200) -> str:
    """The exception's message on one line, at most ``limit`` characters (for ``error:`` lines)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
