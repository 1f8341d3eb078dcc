# SPDX-License-Identifier: MIT
"""App and its services: users, auth, permissions, audit, cache, status.

Everything the library hands out (users, lists, pages, tokens, JSON text)
is copied into Python objects and released before the method returns;
the only native object a Python object holds is the be_app itself,
released by App.close() or the with block, or else when the App and its
services are no longer referenced (no reference cycle keeps them).
One App may be shared by any number of threads: ctypes releases the GIL
during each call, so password hashing and database work run in parallel.
"""
import collections
import ctypes as C
import json
import threading

from . import _layouts as L
from . import errors as E
from ._native import INT32_MAX, INT32_MIN, TX_FN, Struct, int_arg, text_arg

User = collections.namedtuple(
    "User", ["id", "email", "name", "bio", "extra_json", "status", "created_at_ms",
             "updated_at_ms"])
User.extra = property(lambda u: json.loads(u.extra_json), doc="extra, parsed")
User.active = property(lambda u: u.status == "active", doc="whether the user may log in")
User.__doc__ = "A user as read (a copy: later changes do not show)."

Page = collections.namedtuple("Page", ["items", "next_cursor"])
Page.__doc__ = "One page of a listing; next_cursor is None on the last page."

Login = collections.namedtuple("Login", ["token", "user_id"])
Login.__doc__ = "A new session: its token (a secret: never log it) and its user."

Session = collections.namedtuple(
    "Session", ["session_id", "user_id", "created_at_ms", "last_used_at_ms", "expires_at_ms"])
Session.__doc__ = "A live session (never its token)."

AuditRow = collections.namedtuple(
    "AuditRow", ["id", "actor_id", "action", "target_type", "target_id", "at_ms",
                 "details_json"])
AuditRow.details = property(lambda r: json.loads(r.details_json), doc="details, parsed")

AuditCheck = collections.namedtuple("AuditCheck", ["ok", "first_bad_id", "rows"])
AuditCheck.__doc__ = "A chain verification: ok, the first bad row id (0 when ok), rows read."

_UNSET = object()
STATUS_NAMES = ("active", "disabled")


def _s(raw):
    return None if raw is None else raw.decode("utf-8", "replace")


class _Handle:
    """The be_app pointer, shared by the App and its services, guarded so
    that close() waits for calls in flight and no call starts after it.
    `keep` holds what the library points to for the app's life (the
    mailer and its callback)."""

    def __init__(self, ptr, free, keep):
        self._ptr, self._free, self._keep = ptr, free, keep
        self._cond = threading.Condition()
        self._busy = 0

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: the library may be gone
            pass

    def __enter__(self):
        with self._cond:
            if self._ptr is None:
                raise E.ClosedError("the App is closed")
            self._busy += 1
            return self._ptr

    def __exit__(self, *exc):
        with self._cond:
            self._busy -= 1
            if self._busy == 0:
                self._cond.notify_all()

    def close(self):
        with self._cond:
            ptr, self._ptr = self._ptr, None
            while self._busy:
                self._cond.wait()
        if ptr is not None:
            self._free(ptr)
            self._keep = None

    @property
    def closed(self):
        return self._ptr is None


class _Service:
    def __init__(self, handle, native):
        self._h = handle
        self._n = native
        self._lib = native.lib

    def _call(self, fn, *args):
        """fn(app, *args, &err) on the open app."""
        with self._h as ptr:
            return self._n.call(fn, ptr, *args)

    def _out(self, fn, *args, out_type=C.c_int64):
        """fn(&out, app, *args, &err) on the open app; returns out (a ctypes
        object: whatever it points to is the caller's to release)."""
        out = out_type()
        with self._h as ptr:
            self._n.call(fn, C.byref(out), ptr, *args)
        return out


def _actor(actor):
    return int_arg(actor, "actor")


class App:
    """An open libbackend app: database, pool, cache and the services.

        with libbackend.App(database="app.db") as app:
            uid = app.users.create(email="ada@example.com", name="Ada").id

    database is a path, a file: URI or ":memory:" (None: the library's
    default, "backend.db"). Keyword options are the fields of
    be_app_options (backend/app.h) that this binding knows, by the same
    names: pool_min, pool_max,
    acquire_timeout_ms, cache_max_entries, cache_max_bytes,
    user_cache_ttl_ms, pwhash_opslimit, pwhash_memlimit,
    insecure_test_hashing, password_min_length, max_concurrent_hashes,
    session_idle_ms, session_absolute_ms, throttle_after, lockout_after,
    lockout_ms, reset_token_ttl_ms, audit_key (bytes), audit_key_adopt,
    hash_wait_ms, pepper (bytes), pepper_id, previous_peppers (a list of
    (id, bytes)), table_prefix (str: where the library's tables live,
    default "be_"), cache_lru_mode ("exact", "approx" or a BE_CACHE_LRU_*
    number), cache_shard_count, connection_init_sql (SQL run on every new
    pooled connection), disable_metrics, statement_stats_max,
    incident_capacity, and the status targets target_api_p95_ms,
    target_db_p95_ms and target_error_rate (a float); and mailer, a
    callable(to, subject, body) that must be
    thread-safe and should only queue the message. Unset options keep
    the library's defaults. Errors in the options raise ValidationError
    naming the field.
    """

    INT_OPTIONS = ("pool_min", "pool_max", "acquire_timeout_ms", "cache_max_entries",
                   "cache_max_bytes", "user_cache_ttl_ms", "pwhash_opslimit", "pwhash_memlimit",
                   "insecure_test_hashing", "password_min_length", "max_concurrent_hashes",
                   "session_idle_ms", "session_absolute_ms", "throttle_after", "lockout_after",
                   "lockout_ms", "reset_token_ttl_ms", "audit_key_adopt", "hash_wait_ms",
                   "pepper_id", "cache_shard_count", "disable_metrics", "statement_stats_max",
                   "incident_capacity", "target_api_p95_ms", "target_db_p95_ms")

    def _lru_mode(self, mode):
        names = ("default", "exact", "approx")
        if isinstance(mode, str):
            if mode not in names:
                raise ValueError(f"cache_lru_mode must be one of {names}, not {mode!r}")
            return self._n.K["BE_CACHE_LRU_" + mode.upper()]
        return int_arg(mode, "cache_lru_mode", INT32_MIN, INT32_MAX)

    def __init__(self, database=None, *, mailer=None, audit_key=None, pepper=None,
                 previous_peppers=(), table_prefix=None, connection_init_sql=None,
                 cache_lru_mode=None, target_error_rate=None, **options):
        from . import _native_instance
        self._n = _native_instance()
        self._handle = None
        opts = Struct(self._n, L.BeAppOptions)
        self._set_options(opts, database, options)
        for field, value in (("table_prefix", table_prefix),
                             ("connection_init_sql", connection_init_sql)):
            if value is not None:
                opts.set_text(field, None, text_arg(value, field)[0])
        if cache_lru_mode is not None:
            opts.view.cache_lru_mode = self._lru_mode(cache_lru_mode)
        if target_error_rate is not None:
            if isinstance(target_error_rate, bool) or \
                    not isinstance(target_error_rate, (int, float)):
                raise TypeError("target_error_rate must be a number")
            opts.view.target_error_rate = float(target_error_rate)
        for field, value in (("audit_key", audit_key), ("pepper", pepper)):
            if value is not None:
                if not isinstance(value, (bytes, bytearray)):
                    raise TypeError(f"{field} must be bytes, not {type(value).__name__}")
                opts.set_bytes(field, field + "_len", bytes(value))
        self._set_previous_peppers(opts, previous_peppers)
        keep = []
        if mailer is not None:
            keep.append(self._make_mailer(mailer))
            opts.view.mailer = keep[-1].ptr
        out = C.c_void_p()
        self._n.call(self._n.lib.be_app_new, C.byref(out), opts.ptr)
        self._handle = _Handle(out, self._n.lib.be_app_free, keep)
        self.users = Users(self._handle, self._n)
        self.auth = Auth(self._handle, self._n)
        self.permissions = Permissions(self._handle, self._n)
        self.audit = Audit(self._handle, self._n)
        self.cache = Cache(self._handle, self._n)

    def _set_options(self, opts, database, options):
        if database is not None:  # None: the library's default, "backend.db"
            opts.set_text("database", None, text_arg(database, "database")[0])
        for name, value in options.items():
            if name not in self.INT_OPTIONS:
                raise TypeError(f"App() got an unexpected option {name!r}")
            if isinstance(value, bool):
                value = int(value)
            field = dict(L.BeAppOptions._fields_)[name]
            bits = 8 * C.sizeof(field)
            lo = 0 if field in (C.c_uint64, C.c_uint32) else -(1 << (bits - 1))
            hi = (1 << bits) - 1 if lo == 0 else (1 << (bits - 1)) - 1
            setattr(opts.view, name, int_arg(value, name, lo, hi))

    @staticmethod
    def _set_previous_peppers(opts, previous):
        previous = list(previous)
        if not previous:
            return
        n = len(previous)
        keys, lens, ids = (C.POINTER(C.c_uint8) * n)(), (C.c_size_t * n)(), (C.c_int32 * n)()
        for i, entry in enumerate(previous):
            if not (isinstance(entry, tuple) and len(entry) == 2 and
                    isinstance(entry[1], (bytes, bytearray))):
                raise TypeError("previous_peppers must be a list of (id, bytes)")
            ids[i] = int_arg(entry[0], f"previous_peppers[{i}] id", INT32_MIN, INT32_MAX)
            arr = (C.c_uint8 * max(len(entry[1]), 1)).from_buffer_copy(
                bytes(entry[1]).ljust(1, b"\0"))
            opts.keep.append(arr)
            keys[i] = C.cast(arr, C.POINTER(C.c_uint8))
            lens[i] = len(entry[1])
        opts.keep += [keys, lens, ids]
        opts.view.previous_peppers = C.cast(keys, C.POINTER(C.POINTER(C.c_uint8)))
        opts.view.previous_pepper_lens = C.cast(lens, C.POINTER(C.c_size_t))
        opts.view.previous_pepper_ids = C.cast(ids, C.POINTER(C.c_int32))
        opts.view.previous_pepper_count = n

    def _make_mailer(self, send):
        if not callable(send):
            raise TypeError("mailer must be callable(to, subject, body)")
        failed = self._n.K["BE_E_UNAVAILABLE"]

        def trampoline(to, subject, body, user_data, err):
            try:
                send(_s(to), _s(subject), _s(body))
                return 0
            except BaseException:  # noqa: B902 - nothing may unwind into C
                return failed

        m = Struct(self._n, L.BeMailer)
        callback = L.MAILER_SEND(trampoline)
        m.keep.append(callback)  # the library calls it for the app's life
        m.view.send = callback
        return m

    # ---- lifetime ----------------------------------------------------------

    def close(self):
        """Release the app (waits for calls in flight; idempotent)."""
        if self._handle is not None:
            self._handle.close()

    @property
    def closed(self):
        return self._handle is None or self._handle.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- status ------------------------------------------------------------

    def pool_stats(self):
        """The pool's snapshot (be_pool_stats) as a dict: in_use, idle,
        waiting, acquires, timeouts, wait_p99_ns, ..."""
        n, lib = self._n, self._n.lib
        ps = Struct(n, L.BePoolStats)
        with self._handle as ptr:
            n.call(lib.be_pool_stats_get, ps.ptr, lib.be_app_pool(ptr))
        return {f: getattr(ps.view, f) for f in L.POOL_STATS_INT32 + L.POOL_STATS_INT64}

    def cache_stats(self):
        """The cache's snapshot (be_cache_stats) as a dict: hits, misses,
        entries, bytes, evictions_count, ..."""
        n, lib = self._n, self._n.lib
        cs = Struct(n, L.BeCacheStats)
        with self._handle as ptr:
            n.call(lib.be_cache_stats_get, cs.ptr, lib.be_app_cache(ptr))
        return {f: getattr(cs.view, f) for f in ("shard_count",) + L.CACHE_STATS_INT64}

    def query_stats(self):
        """Every statement on the app's pool (be_pool_query_stats): queries,
        errors, rows and latency quantiles in ns, as a dict."""
        n, lib = self._n, self._n.lib
        with self._handle as ptr:
            stats = lib.be_pool_query_stats(lib.be_app_pool(ptr))
            return json.loads(n.take_text(lib.be_query_stats_to_json, stats))

    def _app_text(self, fn):
        """The text fn(&out, &len, app, &err) hands over (released with be_free())."""
        with self._handle as ptr:
            return self._n.take_text(fn, ptr)

    def status(self):
        """The app's status for a health check (be_app_status_json()), as a
        dict: "ok" (database reachable and every target met), "database",
        "pool", "cache", the performance "targets" (API p95, DB query p95,
        error rate; each with its current value and "ok") and "incidents";
        plus "library_version"."""
        doc = json.loads(self._app_text(self._n.lib.be_app_status_json))
        doc.setdefault("library_version", _s(self._n.lib.be_version_string()))
        return doc

    def status_text(self):
        """The status as a human-readable table (be_app_status_text())."""
        return self._app_text(self._n.lib.be_app_status_text)

    def memory(self):
        """Memory by component, in bytes (be_app_memory_json()), as a dict."""
        return json.loads(self._app_text(self._n.lib.be_app_memory_json))

    def metrics(self):
        """Every figure (operations, statements, pool, cache, memory, status,
        incidents) as a dict (be_app_metrics_json())."""
        return json.loads(self._app_text(self._n.lib.be_app_metrics_json))

    def metrics_prometheus(self):
        """Every figure as Prometheus text exposition 0.0.4
        (be_app_metrics_prometheus()), for /metrics or a .prom file."""
        return self._app_text(self._n.lib.be_app_metrics_prometheus)


class Users(_Service):
    """be_user_*: users with a unique email, cached as user:{id}."""

    def _user_input(self, email, name, bio, extra, status):
        K = self._n.K
        s = Struct(self._n, L.BeUserInput)
        fields = 0
        for key, value, bit in (("email", email, "EMAIL"), ("name", name, "NAME"),
                                ("bio", bio, "BIO"), ("extra", extra, "EXTRA")):
            if value is _UNSET:
                continue
            if key == "extra" and isinstance(value, dict):
                value = json.dumps(value)
            s.set_text(key, key + "_len", text_arg(value, key)[0])
            fields |= K["BE_USER_FIELD_" + bit]
        if status is not _UNSET:
            s.view.status = self._status(status)
            fields |= K["BE_USER_FIELD_STATUS"]
        s.view.fields = fields
        return s

    def _status(self, status):
        if isinstance(status, str) and status in STATUS_NAMES:
            return self._n.K["BE_USER_" + status.upper()]
        if isinstance(status, str):
            raise ValueError(f"status must be one of {STATUS_NAMES}, not {status!r}")
        return int_arg(status, "status", INT32_MIN, INT32_MAX)

    def _read(self, u):
        lib = self._lib
        code = lib.be_user_status(u)
        names = {self._n.K["BE_USER_" + s.upper()]: s for s in STATUS_NAMES}
        return User(lib.be_user_id(u), _s(lib.be_user_email(u)), _s(lib.be_user_name(u)),
                    _s(lib.be_user_bio(u)), _s(lib.be_user_extra(u)), names.get(code, code),
                    lib.be_user_created_at_ms(u), lib.be_user_updated_at_ms(u))

    def _take_user(self, out):
        try:
            return self._read(out)
        finally:
            self._lib.be_user_free(out)

    def create(self, email, name, *, bio=_UNSET, extra=_UNSET, status=_UNSET, actor=0):
        """Create a user (audited as user.create); returns the User.
        ValidationError names the field; ConflictError when the email is taken."""
        s = self._user_input(email, name, bio, extra, status)
        out = C.c_void_p()
        with self._h as ptr:
            self._n.call(self._lib.be_user_create, C.byref(out), None, ptr, _actor(actor), s.ptr)
        return self._take_user(out)

    def get(self, user_id, *, fresh=False):
        """The user with this id, through the cache, or with fresh=True read
        from the database now (be_user_get_fresh(), which also refreshes
        the cache); NotFoundError if none."""
        fn = self._lib.be_user_get_fresh if fresh else self._lib.be_user_get
        return self._take_user(self._out(fn, int_arg(user_id, "user_id"), out_type=C.c_void_p))

    def get_by_email(self, email):
        """The user with this email (normalised as on create); NotFoundError if none."""
        return self._take_user(self._out(self._lib.be_user_get_by_email,
                                         *text_arg(email, "email"), out_type=C.c_void_p))

    def get_many(self, user_ids):
        """Users by id in one batch: a list in the order of user_ids, None
        where there is no such user."""
        ids = [int_arg(i, "user_ids[]") for i in user_ids]
        arr = (C.c_int64 * max(len(ids), 1))(*ids)
        return self._take_list(self._out(self._lib.be_user_get_many, arr, len(ids),
                                         out_type=C.c_void_p)).items

    def _take_list(self, out):
        lib = self._lib
        try:
            items = []
            for i in range(lib.be_user_list_count(out)):
                u = lib.be_user_list_get(out, i)
                items.append(self._read(u) if u else None)
            return Page(items, _s(lib.be_user_list_next_cursor(out)))
        finally:
            lib.be_user_list_free(out)

    def update(self, user_id, *, email=_UNSET, name=_UNSET, bio=_UNSET, extra=_UNSET,
               status=_UNSET, actor=0):
        """Change the fields given (audited as user.update); returns the User."""
        s = self._user_input(email, name, bio, extra, status)
        out = C.c_void_p()
        with self._h as ptr:
            self._n.call(self._lib.be_user_update, C.byref(out), ptr, _actor(actor),
                         int_arg(user_id, "user_id"), s.ptr)
        return self._take_user(out)

    def delete(self, user_id, *, actor=0):
        """Delete a user, their sessions and role grants (audited); NotFoundError if none."""
        self._call(self._lib.be_user_delete, _actor(actor), int_arg(user_id, "user_id"))

    def list(self, *, limit=0, cursor=None):
        """One page of users in id order (limit 1..100, 0 = 20): Page(items, next_cursor)."""
        raw, n = (None, 0) if cursor is None else text_arg(cursor, "cursor")
        return self._take_list(self._out(self._lib.be_user_list_page, raw, n,
                                         int_arg(limit, "limit", 0, INT32_MAX),
                                         out_type=C.c_void_p))

    def __iter__(self):
        """Every user, page by page."""
        cursor = None
        while True:
            page = self.list(limit=self._n.K["BE_USER_PAGE_MAX"], cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


class Auth(_Service):
    """be_auth_*: passwords (argon2id), sessions, password reset."""

    def check_password(self, password):
        """ValidationError (field "password") when the policy refuses it."""
        self._call(self._lib.be_auth_check_password, *text_arg(password, "password"))

    def set_password(self, user_id, password, *, actor=0):
        """Set a user's password (policy-checked; ends their sessions)."""
        self._call(self._lib.be_auth_set_password, _actor(actor), int_arg(user_id, "user_id"),
                   *text_arg(password, "password"))

    def import_password_hash(self, user_id, password_hash, *, actor=0):
        """Give a user migrated from another system their argon2id hash (PHC
        string, e.g. from argon2-cffi); their first login rehashes it with
        this app's parameters. ValidationError (field "password_hash") for
        anything but a well-formed argon2id string."""
        self._call(self._lib.be_auth_import_password_hash, _actor(actor),
                   int_arg(user_id, "user_id"), *text_arg(password_hash, "password_hash"))

    def login(self, email, password):
        """A new session: Login(token, user_id). AuthError for every failure."""
        out, uid = C.c_void_p(), C.c_int64()
        e, p = text_arg(email, "email"), text_arg(password, "password")
        with self._h as ptr:
            self._n.call(self._lib.be_auth_login, C.byref(out), C.byref(uid), ptr, *e, *p)
        try:
            return Login(C.string_at(out).decode("ascii"), uid.value)
        finally:
            self._lib.be_auth_token_free(out)

    def verify(self, token):
        """The user id of a live session (slides its idle timeout); AuthError otherwise."""
        return self._out(self._lib.be_auth_verify, *text_arg(token, "token")).value

    def verify_session(self, token):
        """verify() that returns the Session (id, login time, expiry)."""
        s = Struct(self._n, L.BeAuthSessionInfo)
        with self._h as ptr:
            self._n.call(self._lib.be_auth_verify_session, s.ptr, ptr,
                         *text_arg(token, "token"))
        v = s.view
        return Session(v.session_id, v.user_id, v.created_at_ms, v.last_used_at_ms,
                       v.expires_at_ms)

    def sessions(self, user_id):
        """A user's live sessions, most recently used first."""
        lib = self._lib
        out = self._out(lib.be_auth_list_sessions, int_arg(user_id, "user_id"),
                        out_type=C.c_void_p)
        try:
            return [Session(lib.be_auth_session_list_id(out, i), user_id,
                            lib.be_auth_session_list_created_at_ms(out, i),
                            lib.be_auth_session_list_last_used_at_ms(out, i),
                            lib.be_auth_session_list_expires_at_ms(out, i))
                    for i in range(lib.be_auth_session_list_count(out))]
        finally:
            lib.be_auth_session_list_free(out)

    def end_session(self, user_id, session_id, *, actor=0):
        """End one of a user's sessions by id."""
        self._call(self._lib.be_auth_end_session, _actor(actor), int_arg(user_id, "user_id"),
                   int_arg(session_id, "session_id"))

    def logout(self, token):
        """End the session (idempotent)."""
        self._call(self._lib.be_auth_logout, *text_arg(token, "token"))

    def revoke_all(self, user_id, *, actor=0):
        """End every session of a user."""
        self._call(self._lib.be_auth_revoke_all, _actor(actor), int_arg(user_id, "user_id"))

    def change_password(self, user_id, old_password, new_password, *, current_token=None):
        """A user changes their own password; other sessions end (all of
        them when current_token is None)."""
        tok = (None, 0) if current_token is None else text_arg(current_token, "current_token")
        self._call(self._lib.be_auth_change_password, int_arg(user_id, "user_id"), *tok,
                   *text_arg(old_password, "old_password"),
                   *text_arg(new_password, "new_password"))

    def request_reset(self, email):
        """Mail a reset token through the App's mailer (same answer for every email)."""
        self._call(self._lib.be_auth_request_reset, *text_arg(email, "email"))

    def reset_password(self, token, new_password):
        """Set a new password with a reset token."""
        self._call(self._lib.be_auth_reset_password, *text_arg(token, "token"),
                   *text_arg(new_password, "new_password"))

    def purge_expired(self):
        """Delete ended sessions and used reset tokens; returns how many rows went."""
        return self._out(self._lib.be_auth_purge_expired).value


class Permissions(_Service):
    """be_perm_*: roles holding resource:action permissions (wildcards allowed)."""

    def check(self, user_id, permission):
        """ForbiddenError unless the user holds the permission."""
        self._call(self._lib.be_perm_check, int_arg(user_id, "user_id"),
                   *text_arg(permission, "permission"))

    def allowed(self, user_id, permission):
        """Whether the user holds the permission."""
        try:
            self.check(user_id, permission)
            return True
        except E.ForbiddenError:
            return False

    def create_role(self, role, *, actor=0):
        """Create a role; returns its id. ConflictError when it exists."""
        return self._out(self._lib.be_perm_role_create, _actor(actor),
                         *text_arg(role, "role")).value

    def delete_role(self, role, *, actor=0):
        self._call(self._lib.be_perm_role_delete, _actor(actor), *text_arg(role, "role"))

    def grant(self, role, permission, *, actor=0):
        """Give a role a permission (idempotent)."""
        self._call(self._lib.be_perm_role_grant, _actor(actor), *text_arg(role, "role"),
                   *text_arg(permission, "permission"))

    def revoke(self, role, permission, *, actor=0):
        """Take a permission from a role (holds on the next check)."""
        self._call(self._lib.be_perm_role_revoke, _actor(actor), *text_arg(role, "role"),
                   *text_arg(permission, "permission"))

    def assign(self, user_id, role, *, actor=0):
        """Give a user a role (idempotent)."""
        self._call(self._lib.be_perm_user_assign, _actor(actor), int_arg(user_id, "user_id"),
                   *text_arg(role, "role"))

    def unassign(self, user_id, role, *, actor=0):
        self._call(self._lib.be_perm_user_unassign, _actor(actor),
                   int_arg(user_id, "user_id"), *text_arg(role, "role"))

    def _list(self, fn, *args):
        lib, out = self._lib, self._out(fn, *args, out_type=C.c_void_p)
        try:
            return [_s(lib.be_perm_list_get(out, i)) for i in range(lib.be_perm_list_count(out))]
        finally:
            lib.be_perm_list_free(out)

    def user_permissions(self, user_id):
        """The user's effective permissions, sorted."""
        return self._list(self._lib.be_perm_user_permissions, int_arg(user_id, "user_id"))

    def user_roles(self, user_id):
        return self._list(self._lib.be_perm_user_roles, int_arg(user_id, "user_id"))

    def role_permissions(self, role):
        return self._list(self._lib.be_perm_role_permissions, *text_arg(role, "role"))

    def epoch(self):
        """The authorisation epoch: grows with every change of roles, grants or status."""
        return self._out(self._lib.be_perm_epoch).value


class Audit(_Service):
    """be_audit_*: the hash-chained audit log."""

    def write(self, action, target_type, target_id, details=None, *, actor=0):
        """Append a row in a transaction of its own; returns its id. For a
        row that must commit with your own change, write it from your own
        transaction in C (be_audit_write())."""
        lib, n = self._lib, self._n
        a, t = text_arg(action, "action"), text_arg(target_type, "target_type")
        if isinstance(details, dict):
            details = json.dumps(details)
        d = (None, 0) if details is None else text_arg(details, "details")
        args = (_actor(actor), *a, *t, int_arg(target_id, "target_id"), *d)
        row = C.c_int64()

        with self._h as ptr:
            def body(conn, user_data, err):
                return lib.be_audit_write(C.byref(row), ptr, conn, *args, err)

            fn = TX_FN(body)
            n.call(lib.be_pool_tx_run, lib.be_app_pool(ptr), n.K["BE_TX_IMMEDIATE"], fn, None)
        return row.value

    def list(self, *, user_id=None, from_ms=0, to_ms=0, limit=0, cursor=None):
        """One page of rows, newest first: Page(items=[AuditRow], next_cursor).
        user_id: only rows by or about that user (0 = the system as actor)."""
        lib, q = self._lib, Struct(self._n, L.BeAuditQueryOptions)
        if user_id is not None:
            q.view.match_user = 1
            q.view.user_id = int_arg(user_id, "user_id")
        q.view.from_ms = int_arg(from_ms, "from_ms")
        q.view.to_ms = int_arg(to_ms, "to_ms")
        q.view.limit = int_arg(limit, "limit", 0, INT32_MAX)
        if cursor is not None:
            q.set_text("cursor", "cursor_len", text_arg(cursor, "cursor")[0])
        out = self._out(lib.be_audit_query, q.ptr, out_type=C.c_void_p)
        try:
            rows = [AuditRow(lib.be_audit_page_id(out, i), lib.be_audit_page_actor_id(out, i),
                             _s(lib.be_audit_page_action(out, i)),
                             _s(lib.be_audit_page_target_type(out, i)),
                             lib.be_audit_page_target_id(out, i), lib.be_audit_page_at_ms(out, i),
                             _s(lib.be_audit_page_details(out, i)))
                    for i in range(lib.be_audit_page_count(out))]
            return Page(rows, _s(lib.be_audit_page_next_cursor(out)))
        finally:
            lib.be_audit_page_free(out)

    def verify(self):
        """Recompute the whole chain: AuditCheck(ok, first_bad_id, rows)."""
        bad, rows = C.c_int64(), C.c_int64()
        with self._h as ptr:
            self._n.call(self._lib.be_audit_verify, C.byref(bad), C.byref(rows), ptr)
        return AuditCheck(bad.value == 0, bad.value, rows.value)

    def head(self):
        """The newest row's (id, hash): an anchor to keep outside the database."""
        rid = C.c_int64()
        h = (C.c_uint8 * self._n.K["BE_AUDIT_HASH_BYTES"])()
        with self._h as ptr:
            self._n.call(self._lib.be_audit_head, C.byref(rid), h, ptr)
        return rid.value, bytes(h)

    def verify_anchor(self, anchor_id, anchor_hash):
        """verify(), and that the chain still holds the anchor from head()."""
        size = self._n.K["BE_AUDIT_HASH_BYTES"]
        if not isinstance(anchor_hash, (bytes, bytearray)) or len(anchor_hash) != size:
            raise TypeError(f"anchor_hash must be {size} bytes")
        h = (C.c_uint8 * size).from_buffer_copy(bytes(anchor_hash))
        bad, rows = C.c_int64(), C.c_int64()
        with self._h as ptr:
            self._n.call(self._lib.be_audit_verify_anchor, C.byref(bad), C.byref(rows), ptr,
                         int_arg(anchor_id, "anchor_id"), h)
        return AuditCheck(bad.value == 0, bad.value, rows.value)


class Cache(_Service):
    """The app's cache (be_cache_*): bytes under str or bytes keys. The user
    service keeps profiles under "user:"; keep your keys out of it."""

    def _key(self, key):
        return text_arg(key, "key")

    def get(self, key, default=None):
        """The value (bytes), or default on a miss."""
        lib, k = self._lib, self._key(key)
        entry = C.c_void_p()
        with self._h as ptr:
            rc = lib.be_cache_get(C.byref(entry), lib.be_app_cache(ptr), *k, None)
        if rc == self._n.K["BE_E_NOT_FOUND"]:
            return default
        if rc < 0:
            raise self._n.error(rc, None)
        try:
            n = C.c_size_t()
            value = lib.be_cache_entry_value(entry, C.byref(n))
            return C.string_at(value, n.value) if n.value else b""
        finally:
            lib.be_cache_entry_release(entry)

    def set(self, key, value, ttl_ms=None):
        """Store value (bytes or str, copied) for ttl_ms milliseconds (None:
        the cache's default TTL; -1: no expiry)."""
        lib, k = self._lib, self._key(key)
        v = text_arg(value, "value")
        ttl = self._n.K["BE_CACHE_TTL_DEFAULT"] if ttl_ms is None else int_arg(ttl_ms, "ttl_ms")
        with self._h as ptr:
            self._n.call(lib.be_cache_set, lib.be_app_cache(ptr), *k, *v, ttl)

    def delete(self, key):
        """Remove key; whether it was there."""
        lib, k = self._lib, self._key(key)
        with self._h as ptr:
            rc = lib.be_cache_delete(lib.be_app_cache(ptr), *k, None)
        if rc < 0 and rc != self._n.K["BE_E_NOT_FOUND"]:
            raise self._n.error(rc, None)
        return rc == 0

    def invalidate_prefix(self, prefix):
        """Drop every entry whose key starts with prefix."""
        lib = self._lib
        with self._h as ptr:
            self._n.call(lib.be_cache_invalidate_prefix, lib.be_app_cache(ptr),
                         *text_arg(prefix, "prefix"))

    def __getitem__(self, key):
        value = self.get(key, _UNSET)
        if value is _UNSET:
            raise KeyError(key)
        return value

    def __setitem__(self, key, value):
        self.set(key, value)

    def __delitem__(self, key):
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key):
        return self.get(key, _UNSET) is not _UNSET
