"""The one error of `backdrop serve` that a user can fix."""


class ServeError(RuntimeError):
    """The page cannot be built or served; the message says what to install or change."""
