"""Exceptions that the API, CLI and operators turn into a message a person can act on."""


class ArtAIError(Exception):
    """A mistake the user can fix; the message says which input, what is wrong, what to do."""

    exit_code = 1


class InputError(ArtAIError):
    """A bad argument, a missing file or an image that does not fit; the CLI exits 2 for these."""

    exit_code = 2


class ModelError(ArtAIError):
    """A weights file that is missing, corrupt, unsafe or of another layout."""


class NotAvailableError(ArtAIError):
    """A method whose engine or dependency is not installed (or not built yet)."""


class Cancelled(Exception):
    """Raised between steps when the caller's cancel event is set; nothing is written after it."""
