# SPDX-License-Identifier: MIT
"""The public structs this binding fills or reads, as ctypes layouts.

Each layout is the struct as it stood at the version in VERSIONS: the
binding was written against that version and never needs more. A later
library may have appended fields (structs only grow at the end), so the
binding never assumes the library's size equals ctypes.sizeof(layout): it
allocates the larger of the two, lets the library's be_<x>_init() fill it,
and touches only the fields declared here (libbackend._native.Struct).

The import-time check (libbackend._native.check_abi) refuses a library
whose struct is smaller than the layout or older than VERSIONS; the
binding's tests check that every layout here is a prefix (same names,
types and offsets) of tests/ffi/ctypes_layouts.py's, which the C compiler
vouches for.
"""
import ctypes as C

ERR = C.POINTER(C.c_void_p)  # be_error **


def _struct(name, fields):
    return type(name, (C.Structure,), {"_fields_": fields})


# int (*send)(const char *to, const char *subject, const char *body,
#             void *user_data, be_error **err)
MAILER_SEND = C.CFUNCTYPE(C.c_int, C.c_char_p, C.c_char_p, C.c_char_p, C.c_void_p, ERR)

BeMailer = _struct("be_mailer", [
    ("version", C.c_uint32),
    ("send", MAILER_SEND),
    ("user_data", C.c_void_p),
])

BeAppOptions = _struct("be_app_options", [
    ("version", C.c_uint32),
    ("database", C.c_char_p),
    ("driver", C.c_void_p),
    ("pool_min", C.c_int32),
    ("pool_max", C.c_int32),
    ("acquire_timeout_ms", C.c_int64),
    ("cache_max_entries", C.c_int64),
    ("cache_max_bytes", C.c_int64),
    ("user_cache_ttl_ms", C.c_int64),
    ("pwhash_opslimit", C.c_uint64),
    ("pwhash_memlimit", C.c_uint64),
    ("insecure_test_hashing", C.c_int32),
    ("password_min_length", C.c_int32),
    ("max_concurrent_hashes", C.c_int32),
    ("session_idle_ms", C.c_int64),
    ("session_absolute_ms", C.c_int64),
    ("throttle_after", C.c_int32),
    ("lockout_after", C.c_int32),
    ("lockout_ms", C.c_int64),
    ("reset_token_ttl_ms", C.c_int64),
    ("clock", C.c_void_p),
    ("mailer", C.c_void_p),
    ("host_migrations", C.c_void_p),
    ("audit_key", C.POINTER(C.c_uint8)),
    ("audit_key_len", C.c_size_t),
    ("audit_key_adopt", C.c_int32),
    ("hash_wait_ms", C.c_int64),
    ("pepper", C.POINTER(C.c_uint8)),
    ("pepper_len", C.c_size_t),
    ("pepper_id", C.c_int32),
    ("previous_peppers", C.POINTER(C.POINTER(C.c_uint8))),
    ("previous_pepper_lens", C.POINTER(C.c_size_t)),
    ("previous_pepper_ids", C.POINTER(C.c_int32)),
    ("previous_pepper_count", C.c_int32),
    ("table_prefix", C.c_char_p),
    ("cache_lru_mode", C.c_int32),
    ("cache_shard_count", C.c_int32),
    ("connection_init_sql", C.c_char_p),
    ("connection_init", C.c_void_p),  # a C callback: not set by the binding
    ("connection_init_user_data", C.c_void_p),
    ("disable_metrics", C.c_int32),
    ("statement_stats_max", C.c_int32),
    ("incident_capacity", C.c_int32),
    ("target_api_p95_ms", C.c_int64),
    ("target_db_p95_ms", C.c_int64),
    ("target_error_rate", C.c_double),
])

BeUserInput = _struct("be_user_input", [
    ("version", C.c_uint32),
    ("fields", C.c_uint32),
    ("email", C.c_char_p),
    ("email_len", C.c_size_t),
    ("name", C.c_char_p),
    ("name_len", C.c_size_t),
    ("bio", C.c_char_p),
    ("bio_len", C.c_size_t),
    ("extra", C.c_char_p),
    ("extra_len", C.c_size_t),
    ("status", C.c_int32),
])

BeAuditQueryOptions = _struct("be_audit_query_options", [
    ("version", C.c_uint32),
    ("match_user", C.c_int32),
    ("user_id", C.c_int64),
    ("from_ms", C.c_int64),
    ("to_ms", C.c_int64),
    ("cursor", C.c_char_p),
    ("cursor_len", C.c_size_t),
    ("limit", C.c_int32),
])

BeAuthSessionInfo = _struct("be_auth_session_info", [
    ("version", C.c_uint32),
    ("session_id", C.c_int64),
    ("user_id", C.c_int64),
    ("created_at_ms", C.c_int64),
    ("last_used_at_ms", C.c_int64),
    ("expires_at_ms", C.c_int64),
])

POOL_STATS_INT32 = ("total", "in_use", "idle", "waiting", "opening", "min_conns", "max_conns")
POOL_STATS_INT64 = ("acquires", "waits", "handoffs", "timeouts", "deadlocks", "open_failures",
                    "creates", "destroys", "validations", "broken", "expired", "idle_closed",
                    "rollbacks", "leaks", "wait_p50_ns", "wait_p95_ns", "wait_p99_ns",
                    "wait_max_ns", "oldest_waiter_ns", "longest_held_ns")
BePoolStats = _struct("be_pool_stats", [("version", C.c_uint32)] +
                      [(f, C.c_int32) for f in POOL_STATS_INT32] +
                      [(f, C.c_int64) for f in POOL_STATS_INT64])

CACHE_STATS_INT64 = ("hits", "misses", "negative_hits", "loads", "load_errors", "load_waits",
                     "inserts", "replacements", "evictions_size", "evictions_count",
                     "expirations", "invalidations", "entries", "bytes", "memory_bytes")
BeCacheStats = _struct("be_cache_stats", [("version", C.c_uint32), ("shard_count", C.c_uint32)] +
                       [(f, C.c_int64) for f in CACHE_STATS_INT64])

# An element of an array the library hands over: its size is the stride,
# so it must be exactly the library's (checked at import).
BeLogField = _struct("be_log_field", [
    ("key", C.c_char_p),
    ("value", C.c_char_p),
])
# void (*be_log_fn)(int32_t level, const char *message, const be_log_field *fields,
#                   size_t field_count, void *user_data)
LOG_FN = C.CFUNCTYPE(None, C.c_int32, C.c_char_p, C.POINTER(BeLogField), C.c_size_t, C.c_void_p)
FIXED = [BeLogField]

# layout -> the struct version it describes, and the be_<x>_init() that fills it.
VERSIONS = {
    BeMailer: (1, "be_mailer_init"),
    BeAppOptions: (1, "be_app_options_init"),
    BeUserInput: (1, "be_user_input_init"),
    BeAuditQueryOptions: (1, "be_audit_query_options_init"),
    BeAuthSessionInfo: (1, "be_auth_session_info_init"),
    BePoolStats: (1, "be_pool_stats_init"),
    BeCacheStats: (1, "be_cache_stats_init"),
}
