# SPDX-License-Identifier: MIT
"""Loading libbackend.so.0, the C signatures, the import-time ABI check and
the helpers every call goes through.

Where the library comes from, first match wins:
  1. LIBBACKEND_PATH: the library file, or a directory holding
     libbackend.so.0 (when set, nothing else is tried);
  2. libbackend.so.0 next to this package (a wheel or an install that
     ships it);
  3. the system's loader: "libbackend.so.0", then
     ctypes.util.find_library("backend") when that finds a 0.x soname.

Forward compatibility: any later 0.x library works. Struct layouts are
only checked to be at least what this binding needs (size and version,
be_struct_info()); the binding allocates max(library size, own size),
lets the library's be_<x>_init() fill it and sets only its own fields.
Constants come from be_constant(), never from copies of the headers.
"""
import ctypes as C
import ctypes.util
import os

from . import _layouts as L
from . import errors as E

SONAME = "libbackend.so.0"
MIN_VERSION = (0, 1, 0)  # the release this binding was written against
BE_OK = 0

P = C.c_void_p
I32, I64, U32, SZ = C.c_int32, C.c_int64, C.c_uint32, C.c_size_t
STR = C.c_char_p  # text in (with an explicit length) or borrowed text out
PP = C.POINTER(C.c_void_p)
PI64 = C.POINTER(C.c_int64)
PSZ = C.POINTER(C.c_size_t)
ERR = L.ERR
TX_FN = C.CFUNCTYPE(C.c_int, P, P, ERR)  # int (*)(be_conn *, void *, be_error **)

# Every C function the binding calls: name -> (restype, argtypes).
SIGNATURES = {
    # abi.h, version.h, common.h
    "be_struct_info": (C.c_int, [PSZ, C.POINTER(U32), STR, SZ, ERR]),
    "be_constant": (C.c_int, [PI64, C.POINTER(STR), STR, SZ, ERR]),
    "be_nul_terminated": (SZ, []),
    "be_version_number": (U32, []),
    "be_version_string": (STR, []),
    "be_free": (None, [P]),
    # error.h
    "be_error_new": (C.c_int, [PP, I32, STR]),
    "be_error_add_field": (C.c_int, [P, STR, STR]),
    "be_error_free": (None, [P]),
    "be_error_code": (I32, [P]),
    "be_error_message": (STR, [P]),
    "be_error_is_retryable": (I32, [P]),
    "be_error_field_count": (SZ, [P]),
    "be_error_field_name": (STR, [P, SZ]),
    "be_error_field_message": (STR, [P, SZ]),
    "be_error_to_json": (C.c_int, [PP, PSZ, P]),
    "be_code_name": (STR, [I32]),
    "be_code_category": (I32, [I32]),
    "be_code_http_status": (I32, [I32]),
    # log.h
    "be_log_set_handler": (C.c_int, [L.LOG_FN, P, I32, ERR]),
    # app.h, mailer.h
    "be_app_options_init": (C.c_int, [P, U32]),
    "be_app_new": (C.c_int, [PP, P, ERR]),
    "be_app_free": (None, [P]),
    "be_app_pool": (P, [P]),
    "be_app_cache": (P, [P]),
    "be_mailer_init": (C.c_int, [P, U32]),
    # user.h
    "be_user_input_init": (C.c_int, [P, U32]),
    "be_user_create": (C.c_int, [PP, PI64, P, I64, P, ERR]),
    "be_user_get": (C.c_int, [PP, P, I64, ERR]),
    "be_user_get_fresh": (C.c_int, [PP, P, I64, ERR]),
    "be_user_get_by_email": (C.c_int, [PP, P, STR, SZ, ERR]),
    "be_user_get_many": (C.c_int, [PP, P, PI64, SZ, ERR]),
    "be_user_update": (C.c_int, [PP, P, I64, I64, P, ERR]),
    "be_user_delete": (C.c_int, [P, I64, I64, ERR]),
    "be_user_list_page": (C.c_int, [PP, P, STR, SZ, I32, ERR]),
    "be_user_id": (I64, [P]),
    "be_user_email": (STR, [P]),
    "be_user_name": (STR, [P]),
    "be_user_bio": (STR, [P]),
    "be_user_extra": (STR, [P]),
    "be_user_status": (I32, [P]),
    "be_user_created_at_ms": (I64, [P]),
    "be_user_updated_at_ms": (I64, [P]),
    "be_user_free": (None, [P]),
    "be_user_list_count": (SZ, [P]),
    "be_user_list_get": (P, [P, SZ]),
    "be_user_list_next_cursor": (STR, [P]),
    "be_user_list_free": (None, [P]),
    # auth.h
    "be_auth_check_password": (C.c_int, [P, STR, SZ, ERR]),
    "be_auth_set_password": (C.c_int, [P, I64, I64, STR, SZ, ERR]),
    "be_auth_import_password_hash": (C.c_int, [P, I64, I64, STR, SZ, ERR]),
    "be_auth_login": (C.c_int, [PP, PI64, P, STR, SZ, STR, SZ, ERR]),
    "be_auth_verify": (C.c_int, [PI64, P, STR, SZ, ERR]),
    "be_auth_session_info_init": (C.c_int, [P, U32]),
    "be_auth_verify_session": (C.c_int, [P, P, STR, SZ, ERR]),
    "be_auth_list_sessions": (C.c_int, [PP, P, I64, ERR]),
    "be_auth_session_list_count": (SZ, [P]),
    "be_auth_session_list_id": (I64, [P, SZ]),
    "be_auth_session_list_created_at_ms": (I64, [P, SZ]),
    "be_auth_session_list_last_used_at_ms": (I64, [P, SZ]),
    "be_auth_session_list_expires_at_ms": (I64, [P, SZ]),
    "be_auth_session_list_free": (None, [P]),
    "be_auth_end_session": (C.c_int, [P, I64, I64, I64, ERR]),
    "be_auth_logout": (C.c_int, [P, STR, SZ, ERR]),
    "be_auth_revoke_all": (C.c_int, [P, I64, I64, ERR]),
    "be_auth_change_password": (C.c_int, [P, I64, STR, SZ, STR, SZ, STR, SZ, ERR]),
    "be_auth_request_reset": (C.c_int, [P, STR, SZ, ERR]),
    "be_auth_reset_password": (C.c_int, [P, STR, SZ, STR, SZ, ERR]),
    "be_auth_purge_expired": (C.c_int, [PI64, P, ERR]),
    "be_auth_token_free": (None, [P]),
    # permission.h
    "be_perm_check": (C.c_int, [P, I64, STR, SZ, ERR]),
    "be_perm_role_create": (C.c_int, [PI64, P, I64, STR, SZ, ERR]),
    "be_perm_role_delete": (C.c_int, [P, I64, STR, SZ, ERR]),
    "be_perm_role_grant": (C.c_int, [P, I64, STR, SZ, STR, SZ, ERR]),
    "be_perm_role_revoke": (C.c_int, [P, I64, STR, SZ, STR, SZ, ERR]),
    "be_perm_user_assign": (C.c_int, [P, I64, I64, STR, SZ, ERR]),
    "be_perm_user_unassign": (C.c_int, [P, I64, I64, STR, SZ, ERR]),
    "be_perm_user_permissions": (C.c_int, [PP, P, I64, ERR]),
    "be_perm_user_roles": (C.c_int, [PP, P, I64, ERR]),
    "be_perm_role_permissions": (C.c_int, [PP, P, STR, SZ, ERR]),
    "be_perm_epoch": (C.c_int, [PI64, P, ERR]),
    "be_perm_list_count": (SZ, [P]),
    "be_perm_list_get": (STR, [P, SZ]),
    "be_perm_list_free": (None, [P]),
    # audit.h
    "be_audit_write": (C.c_int, [PI64, P, P, I64, STR, SZ, STR, SZ, I64, STR, SZ, ERR]),
    "be_audit_query_options_init": (C.c_int, [P, U32]),
    "be_audit_query": (C.c_int, [PP, P, P, ERR]),
    "be_audit_page_count": (SZ, [P]),
    "be_audit_page_next_cursor": (STR, [P]),
    "be_audit_page_id": (I64, [P, SZ]),
    "be_audit_page_actor_id": (I64, [P, SZ]),
    "be_audit_page_action": (STR, [P, SZ]),
    "be_audit_page_target_type": (STR, [P, SZ]),
    "be_audit_page_target_id": (I64, [P, SZ]),
    "be_audit_page_at_ms": (I64, [P, SZ]),
    "be_audit_page_details": (STR, [P, SZ]),
    "be_audit_page_free": (None, [P]),
    "be_audit_verify": (C.c_int, [PI64, PI64, P, ERR]),
    "be_audit_verify_anchor": (C.c_int, [PI64, PI64, P, I64, C.POINTER(C.c_uint8), ERR]),
    "be_audit_head": (C.c_int, [PI64, C.POINTER(C.c_uint8), P, ERR]),
    # pool.h, query_stats.h
    "be_pool_tx_run": (C.c_int, [P, I32, TX_FN, P, ERR]),
    "be_pool_stats_init": (C.c_int, [P, U32]),
    "be_pool_stats_get": (C.c_int, [P, P, ERR]),
    "be_pool_query_stats": (P, [P]),
    "be_query_stats_to_json": (C.c_int, [PP, PSZ, P, ERR]),
    # status.h
    "be_app_status_json": (C.c_int, [PP, PSZ, P, ERR]),
    "be_app_status_text": (C.c_int, [PP, PSZ, P, ERR]),
    "be_app_memory_json": (C.c_int, [PP, PSZ, P, ERR]),
    "be_app_metrics_json": (C.c_int, [PP, PSZ, P, ERR]),
    "be_app_metrics_prometheus": (C.c_int, [PP, PSZ, P, ERR]),
    # cache.h
    "be_cache_set": (C.c_int, [P, STR, SZ, STR, SZ, I64, ERR]),
    "be_cache_get": (C.c_int, [PP, P, STR, SZ, ERR]),
    "be_cache_entry_value": (P, [P, PSZ]),
    "be_cache_entry_release": (None, [P]),
    "be_cache_delete": (C.c_int, [P, STR, SZ, ERR]),
    "be_cache_invalidate_prefix": (C.c_int, [P, STR, SZ, ERR]),
    "be_cache_stats_init": (C.c_int, [P, U32]),
    "be_cache_stats_get": (C.c_int, [P, P, ERR]),
}

# Constants read from the library at import (be_constant()).
CONSTANT_NAMES = [
    "BE_OK", "BE_E_VALIDATION", "BE_E_NOT_FOUND", "BE_E_FORBIDDEN", "BE_E_UNAVAILABLE",
    "BE_USER_ACTIVE", "BE_USER_DISABLED",
    "BE_USER_FIELD_EMAIL", "BE_USER_FIELD_NAME", "BE_USER_FIELD_BIO", "BE_USER_FIELD_EXTRA",
    "BE_USER_FIELD_STATUS",
    "BE_TX_IMMEDIATE", "BE_CACHE_TTL_DEFAULT", "BE_CACHE_TTL_FOREVER",
    "BE_CACHE_LRU_DEFAULT", "BE_CACHE_LRU_EXACT", "BE_CACHE_LRU_APPROX",
    "BE_AUDIT_HASH_BYTES", "BE_AUTH_TOKEN_LEN", "BE_USER_PAGE_MAX", "BE_AUDIT_PAGE_MAX",
    "BE_LOG_DEBUG", "BE_LOG_INFO", "BE_LOG_WARN", "BE_LOG_ERROR", "BE_LOG_OFF",
] + list(E.CATEGORY_CLASSES)

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _candidates():
    env = os.environ.get("LIBBACKEND_PATH")
    if env:
        return [os.path.join(env, SONAME) if os.path.isdir(env) else env]
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), SONAME)
    found = [here] if os.path.exists(here) else []
    found.append(SONAME)
    other = ctypes.util.find_library("backend")
    if other and other.endswith(".so.0"):
        found.append(other)
    return found


def load():
    """The loaded library (a ctypes.CDLL), or ImportError saying what was tried."""
    tried = []
    for path in _candidates():
        try:
            return C.CDLL(path)
        except OSError as e:
            tried.append(f"{path}: {e}")
    raise ImportError("libbackend: cannot load the shared library (set LIBBACKEND_PATH to "
                      "libbackend.so.0 or its directory); tried " + "; ".join(tried))


def declare(lib):
    """Set restype and argtypes of every function in SIGNATURES."""
    missing = []
    for name, (restype, argtypes) in SIGNATURES.items():
        try:
            f = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        f.restype, f.argtypes = restype, argtypes
    if missing:
        raise ImportError(f"libbackend: {lib._name} lacks {', '.join(missing)}")


def check_version(number):
    """ImportError unless number (be_version_number()) is a 0.x release at
    or after MIN_VERSION."""
    got = (number >> 16 & 0xFF, number >> 8 & 0xFF, number & 0xFF)
    if got[0] != MIN_VERSION[0] or got < MIN_VERSION:
        raise ImportError(f"libbackend: the library is {'.'.join(map(str, got))}; this binding "
                          f"needs {MIN_VERSION[0]}.x at or after "
                          f"{'.'.join(map(str, MIN_VERSION))}")


def check_struct(layout, size, version):
    """ImportError unless the library's struct (size, version) holds every
    field of layout: at least as large, at least as new. Larger and newer
    is fine (fields appended by a later release)."""
    want_version = L.VERSIONS[layout][0]
    if size < C.sizeof(layout) or version < want_version:
        raise ImportError(f"libbackend: the library's {layout.__name__} is {size} bytes, "
                          f"version {version}; this binding needs at least "
                          f"{C.sizeof(layout)} bytes, version {want_version}")


class Native:
    """The loaded library with its signatures, constants and struct sizes."""

    def __init__(self, lib):
        self.lib = lib
        declare(lib)
        check_version(lib.be_version_number())
        self.nul_terminated = lib.be_nul_terminated()
        self.K = {name: self.constant(name) for name in CONSTANT_NAMES}
        self.structs = {}  # layout -> (size, version) the library reports
        for layout in L.VERSIONS:
            size, version = self.struct_info(layout.__name__)
            check_struct(layout, size, version)
            self.structs[layout] = (size, version)
        for layout in L.FIXED:
            size, _ = self.struct_info(layout.__name__)
            if size != C.sizeof(layout):
                raise ImportError(f"libbackend: the library's {layout.__name__} is {size} "
                                  f"bytes; this binding's is {C.sizeof(layout)}")
        self.categories = {self.K[n]: cls for n, cls in E.CATEGORY_CLASSES.items()}

    def struct_info(self, name):
        size, version = C.c_size_t(), C.c_uint32()
        raw = name.encode()
        if self.lib.be_struct_info(C.byref(size), C.byref(version), raw, len(raw), None) != BE_OK:
            raise ImportError(f"libbackend: the library does not know struct {name}")
        return size.value, version.value

    def constant(self, name):
        value, text = C.c_int64(), C.c_char_p()
        raw = name.encode()
        rc = self.lib.be_constant(C.byref(value), C.byref(text), raw, len(raw), None)
        if rc != BE_OK:
            raise ImportError(f"libbackend: the library does not know constant {name}")
        return text.value if text.value is not None else value.value

    # ---- errors ---------------------------------------------------------

    def error(self, rc, err):
        """The exception for a failed call: rc and the call's be_error (a
        c_void_p, possibly NULL), which this frees. Without one, an error
        of code rc with the code's text is made."""
        lib = self.lib
        try:
            if not err:  # the call gave no error object: make one for the code
                own = C.c_void_p()
                if lib.be_error_new(C.byref(own), rc, None) == BE_OK:
                    err = own
            code = lib.be_error_code(err) if err else rc
            message = (lib.be_error_message(err) if err else None) or \
                lib.be_code_name(code)
            fields = [E.FieldError(_text(lib.be_error_field_name(err, i)),
                                   _text(lib.be_error_field_message(err, i)))
                      for i in range(lib.be_error_field_count(err) if err else 0)]
            retryable = lib.be_error_is_retryable(err) if err else 0
            problem = self._problem_json(err) if err else None
        finally:
            if err:
                lib.be_error_free(err)
        category = lib.be_code_category(code)
        cls = self.categories.get(category, E.BackendError)
        return cls(_text(message), code=code, code_name=_text(lib.be_code_name(code)),
                   category=category, http_status=lib.be_code_http_status(code),
                   retryable=retryable, fields=fields, problem_json=problem)

    def field_error(self, field, message):
        """A ValidationError naming `field`, made as the library makes its
        own (same problem JSON), for input the library cannot see."""
        err = C.c_void_p()
        code = self.K["BE_E_VALIDATION"]
        if self.lib.be_error_new(C.byref(err), code, f"invalid {field}".encode()) == BE_OK:
            self.lib.be_error_add_field(err, field.encode(), message.encode())
        return self.error(code, err)

    def _problem_json(self, err):
        out, n = C.c_void_p(), C.c_size_t()
        try:
            if self.lib.be_error_to_json(C.byref(out), C.byref(n), err) != BE_OK:
                return None
            return C.string_at(out, n.value).decode("utf-8", "replace")
        finally:
            self.lib.be_free(out)

    def call(self, fn, *args):
        """fn(*args, &err): the return code when it is not negative, else
        the matching exception. The be_error is the call's own."""
        err = C.c_void_p()
        rc = fn(*args, C.byref(err))
        if rc < 0:
            raise self.error(rc, err)
        if err:  # not expected on success; never leak it
            self.lib.be_error_free(err)
        return rc

    def take_text(self, fn, *args):
        """Text a function hands over as (char **out, size_t *out_len, ...,
        be_error **err): copied into a str, then released with be_free()."""
        out, n = C.c_void_p(), C.c_size_t()
        try:
            self.call(fn, C.byref(out), C.byref(n), *args)
            return C.string_at(out, n.value).decode("utf-8", "replace")
        finally:
            self.lib.be_free(out)


class Struct:
    """A versioned struct as the loaded library sees it: a buffer of
    max(library size, ctypes size) bytes filled by the library's
    be_<x>_init() with the library's version (so fields a later release
    appended get their defaults), seen through the binding's layout, of
    which only the binding's own fields are set or read.

    `keep` holds the Python objects whose memory the struct points to."""

    def __init__(self, native, layout):
        self.native = native
        size, version = native.structs[layout]
        nbytes = max(size, C.sizeof(layout))
        self.buf = (C.c_uint64 * ((nbytes + 7) // 8))()  # zeroed, 8-aligned
        self.view = layout.from_buffer(self.buf)
        self.keep = []
        init = getattr(native.lib, L.VERSIONS[layout][1])
        rc = init(self.buf, version)
        if rc != BE_OK:
            raise native.error(rc, None)

    @property
    def ptr(self):
        return C.cast(self.buf, C.c_void_p)

    def set_text(self, field, length_field, raw):
        """Set a `const char *` field from bytes, and its `_len` field (exact)
        when it has one (a field without one is read up to its first NUL:
        the library then checks a NUL-terminated string)."""
        if length_field is None and b"\0" in raw:  # C would stop at it
            raise self.native.field_error(field, "must not contain a NUL byte")
        self.keep.append(raw)
        setattr(self.view, field, raw)
        if length_field is not None:
            setattr(self.view, length_field, len(raw))

    def set_bytes(self, field, length_field, data):
        """Set a `const uint8_t *` field and its length from bytes."""
        arr = (C.c_uint8 * max(len(data), 1)).from_buffer_copy(data.ljust(1, b"\0"))
        self.keep.append(arr)
        setattr(self.view, field, C.cast(arr, C.POINTER(C.c_uint8)))
        setattr(self.view, length_field, len(data))


def _text(raw):
    return None if raw is None else raw.decode("utf-8", "replace")


# ---- argument conversion (TypeError before anything reaches C) -----------

def text_arg(value, name):
    """str or bytes -> (bytes, length). str is encoded as UTF-8 (a lone
    surrogate is kept, so the library refuses it as invalid UTF-8, like
    non-UTF-8 bytes and NUL bytes: a ValidationError naming the field)."""
    if isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    else:
        raise TypeError(f"{name} must be str or bytes, not {type(value).__name__}")
    return raw, len(raw)


def int_arg(value, name, lo=INT64_MIN, hi=INT64_MAX):
    """An int in [lo, hi] (bool refused), else TypeError / OverflowError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise OverflowError(f"{name} = {value} is out of range [{lo}, {hi}]")
    return value
