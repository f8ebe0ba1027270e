"""The one base class for user-facing errors; the CLI prints them as one line, exit code 2."""


class NeasError(ValueError):
    """Bad input from the user (a name, a file, a number); the message says what to do."""


class ConfigError(NeasError):
    """An invalid option or combination of options."""
