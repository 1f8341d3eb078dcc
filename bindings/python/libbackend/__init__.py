# SPDX-License-Identifier: MIT
"""libbackend for Python: the C library's app, users, auth, permissions,
audit log and cache, through ctypes.

    import libbackend

    with libbackend.App(database="app.db") as app:
        ada = app.users.create(email="ada@example.com", name="Ada")
        app.auth.set_password(ada.id, "a long correct passphrase")
        token, user_id = app.auth.login("ada@example.com", "a long correct passphrase")

The shared library (libbackend.so.0, any 0.x release from 0.1.0 on) is
found through LIBBACKEND_PATH, next to this package, or by the system's
loader; importing checks its struct layouts and reads its constants, and
raises ImportError when they do not fit. Errors are BackendError
subclasses, one per category (ValidationError, AuthError, ForbiddenError,
NotFoundError, ConflictError, ...), carrying code, code_name,
http_status, retryable, fields and problem_json (RFC 9457).
"""
from . import _native
from .errors import (AuthError, BackendError, ClosedError, ConflictError, DeadlineError,
                     FieldError, ForbiddenError, InternalError, NotFoundError, RateLimitedError,
                     UnavailableError, UnsupportedError, ValidationError)

__version__ = "0.1.0"

_NATIVE = _native.Native(_native.load())


def _native_instance():
    return _NATIVE


def library_version():
    """The loaded library's version string, e.g. "0.1.0"."""
    return _NATIVE.lib.be_version_string().decode()


def library_path():
    """Where the loaded library came from (as given to the loader)."""
    return _NATIVE.lib._name


from ._app import (App, AuditCheck, AuditRow, Login, Page, Session, User)  # noqa: E402
from ._logging import log_to_python, log_to_stderr  # noqa: E402

__all__ = ["App", "User", "Page", "Login", "Session", "AuditRow", "AuditCheck", "FieldError",
           "BackendError", "ValidationError", "AuthError", "ForbiddenError", "NotFoundError",
           "ConflictError", "RateLimitedError", "UnavailableError", "DeadlineError",
           "InternalError", "UnsupportedError", "ClosedError", "library_version",
           "library_path", "log_to_python", "log_to_stderr"]
