"""The one error the app's own services raise."""


class AppError(Exception):
    """Raised when an analyst's action cannot be carried out; the message says why and how."""
