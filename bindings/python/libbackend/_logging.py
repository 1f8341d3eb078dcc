# SPDX-License-Identifier: MIT
"""The library's log events into Python's logging (be_log_set_handler()).

The handler is process-wide, like the library's: log_to_python() routes
every event of every App to one logger; log_to_stderr() gives the
library its own stderr handler back (also done at interpreter exit, so no
event reaches a finalised interpreter).
"""
import atexit
import logging
import threading

from . import _layouts as L

_lock = threading.Lock()
# Every callback ever installed stays alive: the library may still be
# delivering an event to the previous one after the switch.
_callbacks = []


def _be_level(n, level):
    """The lowest BE_LOG_* level at or above a Python level."""
    for name in ("DEBUG", "INFO", "WARN", "ERROR"):
        if n.K["BE_LOG_" + name] >= level:
            return n.K["BE_LOG_" + name]
    return n.K["BE_LOG_OFF"]


def log_to_python(logger="libbackend", level=logging.WARNING):
    """Send the library's events at `level` and above to `logger` (a name
    or a logging.Logger). Each record's message is the event and its
    key=value fields (secrets arrive redacted); the fields are also in
    record.be_fields (a dict)."""
    from . import _native_instance
    n = _native_instance()
    log = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
    py_level = {n.K["BE_LOG_" + k]: v for k, v in (("DEBUG", logging.DEBUG),
                                                     ("INFO", logging.INFO),
                                                     ("WARN", logging.WARNING),
                                                     ("ERROR", logging.ERROR))}

    def handler(level, message, fields, count, user_data):
        try:
            kv = {fields[i].key.decode("utf-8", "replace"):
                  fields[i].value.decode("utf-8", "replace") for i in range(count)}
            text = (message or b"").decode("utf-8", "replace")
            detail = " ".join(f"{k}={v}" for k, v in kv.items())
            log.log(py_level.get(level, level), "%s%s%s", text, " " if detail else "", detail,
                    extra={"be_fields": kv})
        except BaseException:  # noqa: B902 - nothing may unwind into C
            pass

    callback = L.LOG_FN(handler)
    _set(n, callback, _be_level(n, level))


def log_to_stderr():
    """Give the library its own stderr handler back (WARN and above)."""
    from . import _native_instance
    n = _native_instance()
    _set(n, None, n.K["BE_LOG_WARN"])


def _set(n, callback, min_level):
    with _lock:
        if callback is not None:
            _callbacks.append(callback)
        n.call(n.lib.be_log_set_handler, callback or L.LOG_FN(), None, min_level)


@atexit.register
def _restore():
    if _callbacks:
        try:
            log_to_stderr()
        except Exception:  # noqa: BLE001 - the library may be gone already
            pass
