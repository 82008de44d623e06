"""One error family, each with a sentence a user can act on."""

from __future__ import annotations


class RagqaError(Exception):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if not self.hint:
            return self.message
        return f"{self.message}{'' if self.message.endswith(('.', '!', '?')) else '.'} {self.hint}"


class ConfigError(RagqaError):
    pass


class LoadError(RagqaError):
    """A file that cannot become a Document; `reason` is a short machine-readable kind."""

    def __init__(self, message: str, reason: str = "malformed", hint: str | None = None):
        super().__init__(message, hint)
        self.reason = reason


class NotFound(RagqaError):
    pass


class InputError(RagqaError):
    pass


class BackendError(RagqaError):
    pass


class BudgetError(RagqaError):
    pass


class EmbedderMismatch(ConfigError):
    pass
