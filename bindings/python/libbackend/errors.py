# SPDX-License-Identifier: MIT
"""Exceptions raised for the library's errors: one class per error
category (backend/error.h, BE_CAT_*), all under BackendError.

Every exception carries what the library's be_error says: the code and
its name, the HTTP status, whether a retry may succeed, the field errors,
and the RFC 9457 problem-details JSON to send to a client. The object is
built from the call's own be_error, which is then freed: nothing is
shared between calls or threads.
"""
import collections
import json

FieldError = collections.namedtuple("FieldError", ["field", "message"])
FieldError.__doc__ = "One field error: the field's name and what is wrong with it."


class BackendError(Exception):
    """A libbackend call failed.

    Attributes: code (the negative BE_E_* number), code_name
    ("BE_E_VALIDATION"), category (BE_CAT_* number), http_status,
    retryable (bool), message, fields (list of FieldError),
    problem_json (RFC 9457 text, safe to send to a client; never shows
    causes) and problem (the same, parsed).
    """

    def __init__(self, message, *, code, code_name, category, http_status, retryable,
                 fields=(), problem_json=None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.code_name = code_name
        self.category = category
        self.http_status = http_status
        self.retryable = bool(retryable)
        self.fields = list(fields)
        self.problem_json = problem_json

    @property
    def problem(self):
        """The problem-details document as a dict."""
        return json.loads(self.problem_json) if self.problem_json else None

    def field(self, name):
        """The message of the first field error named `name`, or None."""
        return next((f.message for f in self.fields if f.field == name), None)

    def __str__(self):
        if not self.fields:
            return f"{self.message} ({self.code_name})"
        detail = "; ".join(f"{f.field}: {f.message}" for f in self.fields)
        return f"{self.message} ({self.code_name}; {detail})"

    def __repr__(self):
        return f"{type(self).__name__}({self.message!r}, code_name={self.code_name!r})"


class ValidationError(BackendError, ValueError):
    """Bad input (400); `fields` names what is wrong."""


class AuthError(BackendError):
    """Not authenticated (401): bad credentials, or an invalid or expired session."""


class ForbiddenError(BackendError):
    """Authenticated but not allowed (403)."""


class NotFoundError(BackendError, LookupError):
    """No such object (404)."""


class ConflictError(BackendError):
    """Clashes with the current state (409): a taken email, an existing role,
    a serialization failure."""


class RateLimitedError(BackendError):
    """Throttled (429)."""


class UnavailableError(BackendError):
    """Try again later (503): the database is busy or unreachable, the pool
    is exhausted, no password-hash slot came free."""


class DeadlineError(BackendError):
    """A deadline passed (504)."""


class InternalError(BackendError):
    """A bug, a misuse, out of memory or a storage failure (500)."""


class UnsupportedError(BackendError):
    """Not available in this driver or build (501), e.g. a password reset
    without a mailer."""


# The category macro each class stands for (values come from be_constant()
# at import); a category this binding does not know raises BackendError.
CATEGORY_CLASSES = {
    "BE_CAT_VALIDATION": ValidationError,
    "BE_CAT_UNAUTHENTICATED": AuthError,
    "BE_CAT_PERMISSION_DENIED": ForbiddenError,
    "BE_CAT_NOT_FOUND": NotFoundError,
    "BE_CAT_CONFLICT": ConflictError,
    "BE_CAT_RATE_LIMITED": RateLimitedError,
    "BE_CAT_UNAVAILABLE": UnavailableError,
    "BE_CAT_TIMEOUT": DeadlineError,
    "BE_CAT_INTERNAL": InternalError,
    "BE_CAT_UNSUPPORTED": UnsupportedError,
}


class ClosedError(RuntimeError):
    """The App was used after close()."""
