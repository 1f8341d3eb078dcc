#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A binding checks itself: ctypes layouts of every public struct and the
constants, against the loaded library (backend/abi.h) and the headers.

The LAYOUTS below are what a Python binding declares (every field, in
order, with its ctypes type; binding authors may copy them). The test
checks, as a binding would at load time, that

  * ctypes.sizeof(layout) == the size be_struct_info() reports, and the
    struct version it reports is the header's BE_<X>_VERSION (0 without);
  * the structs the library enumerates == the layouts declared here == the
    `typedef struct be_x {` with fields found in include/backend/*.h, so a
    new public struct without a layout fails;
  * the constants the library enumerates == the object-like BE_* macros of
    the headers (less BE_<X>_INIT and the linkage macros), and each
    be_constant() value equals the macro's value evaluated from the header
    text (BE_NUL_TERMINATED, a size_t, comes back as -1);

and, to keep the layouts themselves honest (a binding has no compiler;
this test has one), that each layout's field names are the header's, in
order, and each field's offset and size equal what the C compiler says.

It also shows that the size check cannot pass vacuously: a be_app_options
missing its last field is refused, and be_app_options_init() really writes
past the end of a buffer of that truncated size (the bug this guards
against); every layout with any one field removed fails the checks.

usage: ctypes_layouts.py --cc CC --cxx CXX -I SRC_INCLUDE -I BUILD_INCLUDE
                         --lib libbackend.so [--sanitize VALUE]
"""
import argparse
import ast
import ctypes as C
import os
import pathlib
import re
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import cprog  # noqa: E402

BE_OK = 0
BE_E_NOT_FOUND = -7

ERR = C.POINTER(C.c_void_p)  # be_error **
FN = C.CFUNCTYPE
# Callbacks returning a borrowed `const char *` or `const void *` are declared
# with c_void_p: ctypes cannot return c_char_p from a Python callback.


def struct(name, fields):
    """A ctypes Structure class for the C struct `name`."""
    return type(name, (C.Structure,), {"_fields_": fields})


BeAllocator = struct("be_allocator", [
    ("version", C.c_uint32),
    ("malloc_fn", FN(C.c_void_p, C.c_size_t, C.c_void_p)),
    ("realloc_fn", FN(C.c_void_p, C.c_void_p, C.c_size_t, C.c_void_p)),
    ("free_fn", FN(None, C.c_void_p, C.c_void_p)),
    ("user_data", C.c_void_p),
])

BeLogField = struct("be_log_field", [
    ("key", C.c_char_p),
    ("value", C.c_char_p),
])

BeCacheOptions = struct("be_cache_options", [
    ("version", C.c_uint32),
    ("shard_count", C.c_uint32),
    ("max_entries", C.c_int64),
    ("max_bytes", C.c_int64),
    ("default_ttl_ms", C.c_int64),
    ("negative_ttl_ms", C.c_int64),
    ("ttl_jitter_pct", C.c_int32),
    ("sweep_batch", C.c_int32),
    ("seed", C.c_uint64),
    ("clock", C.c_void_p),
    ("on_evict", FN(None, C.c_void_p, C.c_size_t, C.c_void_p, C.c_size_t, C.c_int32,
                    C.c_void_p)),
    ("evict_user_data", C.c_void_p),
    ("lru_mode", C.c_int32),
])

BeCacheStats = struct("be_cache_stats", [("version", C.c_uint32), ("shard_count", C.c_uint32)] + [
    (f, C.c_int64) for f in ("hits", "misses", "negative_hits", "loads", "load_errors",
                             "load_waits", "inserts", "replacements", "evictions_size",
                             "evictions_count", "expirations", "invalidations", "entries",
                             "bytes", "memory_bytes")])

BeDriver = struct("be_driver", [
    ("version", C.c_uint32),
    ("name", C.c_char_p),
    ("driver_data", C.c_void_p),
    ("placeholder_style", C.c_int32),
    ("features", C.c_int32),
    ("open", FN(C.c_int, C.POINTER(C.c_void_p), C.c_char_p, C.c_void_p, ERR)),
    ("close", FN(None, C.c_void_p)),
    ("prepare", FN(C.c_int, C.c_void_p, C.POINTER(C.c_void_p), C.c_void_p, C.c_size_t, ERR)),
    ("bind_null", FN(C.c_int, C.c_void_p, C.c_int32, ERR)),
    ("bind_int64", FN(C.c_int, C.c_void_p, C.c_int32, C.c_int64, ERR)),
    ("bind_double", FN(C.c_int, C.c_void_p, C.c_int32, C.c_double, ERR)),
    ("bind_text", FN(C.c_int, C.c_void_p, C.c_int32, C.c_void_p, C.c_size_t, ERR)),
    ("bind_blob", FN(C.c_int, C.c_void_p, C.c_int32, C.c_void_p, C.c_size_t, ERR)),
    ("step", FN(C.c_int, C.c_void_p, ERR)),
    ("column_count", FN(C.c_int32, C.c_void_p)),
    ("column_name", FN(C.c_void_p, C.c_void_p, C.c_int32)),
    ("column_type", FN(C.c_int32, C.c_void_p, C.c_int32)),
    ("column_int64", FN(C.c_int64, C.c_void_p, C.c_int32)),
    ("column_double", FN(C.c_double, C.c_void_p, C.c_int32)),
    ("column_text", FN(C.c_void_p, C.c_void_p, C.c_int32, C.POINTER(C.c_size_t))),
    ("column_blob", FN(C.c_void_p, C.c_void_p, C.c_int32, C.POINTER(C.c_size_t))),
    ("reset", FN(C.c_int, C.c_void_p, ERR)),
    ("finalize", FN(None, C.c_void_p)),
    ("exec", FN(C.c_int, C.c_void_p, C.c_char_p, ERR)),
    ("begin", FN(C.c_int, C.c_void_p, C.c_int32, ERR)),
    ("commit", FN(C.c_int, C.c_void_p, ERR)),
    ("rollback", FN(C.c_int, C.c_void_p, ERR)),
    ("savepoint", FN(C.c_int, C.c_void_p, C.c_char_p, ERR)),
    ("release", FN(C.c_int, C.c_void_p, C.c_char_p, ERR)),
    ("rollback_to", FN(C.c_int, C.c_void_p, C.c_char_p, ERR)),
    ("last_insert_id", FN(C.c_int64, C.c_void_p)),
    ("changes", FN(C.c_int64, C.c_void_p)),
    ("ping", FN(C.c_int, C.c_void_p, ERR)),
    ("bind_limit", FN(C.c_int32, C.c_void_p)),
    ("in_transaction", FN(C.c_int32, C.c_void_p)),
    ("next_statement", FN(C.c_int, C.c_void_p, C.POINTER(C.c_size_t), C.c_void_p, C.c_size_t,
                          ERR)),
    ("table_exists", FN(C.c_int, C.c_void_p, C.POINTER(C.c_int32), C.c_char_p, ERR)),
    ("open_existing", FN(C.c_int, C.POINTER(C.c_void_p), C.c_char_p, C.c_void_p, ERR)),
    ("bind_text_static", FN(C.c_int, C.c_void_p, C.c_int32, C.c_void_p, C.c_size_t, ERR)),
    ("column_value", FN(C.c_int32, C.c_void_p, C.c_int32, C.POINTER(C.c_int64),
                        C.POINTER(C.c_double), C.POINTER(C.c_void_p), C.POINTER(C.c_size_t))),
    ("status", FN(C.c_int, C.c_void_p, C.c_int32, C.POINTER(C.c_int64), C.POINTER(C.c_int64),
                  C.c_char_p, C.c_size_t, ERR)),
    ("listen", FN(C.c_int, C.c_void_p, C.c_char_p, ERR)),
    ("notify", FN(C.c_int, C.c_void_p, C.c_char_p, C.c_void_p, C.c_size_t, ERR)),
    ("wait_notification", FN(C.c_int, C.c_void_p, C.POINTER(C.c_int32), C.c_char_p, C.c_size_t,
                             C.POINTER(C.c_size_t), C.c_int32, C.c_int64, ERR)),
])

BeStmtCacheStats = struct("be_stmt_cache_stats", [
    ("version", C.c_uint32),
    ("size", C.c_int32),
    ("hits", C.c_int64),
    ("misses", C.c_int64),
])

BeSqliteOptions = struct("be_sqlite_options", [
    ("version", C.c_uint32),
    ("journal_mode", C.c_int32),
    ("synchronous", C.c_int32),
    ("foreign_keys", C.c_int32),
    ("busy_timeout_ms", C.c_int32),
    ("open_flags", C.c_int32),
    ("cache_size", C.c_int64),
    ("mmap_size", C.c_int64),
    ("secure_delete", C.c_int32),
    ("temp_store", C.c_int32),
    ("wal_autocheckpoint", C.c_int32),
    ("journal_size_limit", C.c_int64),
])

BeTxOptions = struct("be_tx_options", [
    ("version", C.c_uint32),
    ("mode", C.c_int32),
    ("max_retries", C.c_int32),
    ("backoff_ms", C.c_int64),
    ("max_backoff_ms", C.c_int64),
    ("retry_budget_ms", C.c_int64),
])

BePoolOptions = struct("be_pool_options", [
    ("version", C.c_uint32),
    ("driver", C.POINTER(BeDriver)),
    ("dsn", C.c_char_p),
    ("name", C.c_char_p),
    ("min_conns", C.c_int32),
    ("max_conns", C.c_int32),
    ("acquire_timeout_ms", C.c_int64),
    ("validation_window_ms", C.c_int64),
    ("max_lifetime_ms", C.c_int64),
    ("lifetime_jitter_permille", C.c_int32),
    ("usage_alert_percent", C.c_int32),
    ("idle_timeout_ms", C.c_int64),
    ("leak_threshold_ms", C.c_int64),
    ("on_usage_alert", FN(None, C.c_void_p, C.c_int32, C.c_int32, C.c_int32, C.c_void_p)),
    ("usage_alert_user_data", C.c_void_p),
    ("on_leak", FN(None, C.c_void_p, C.c_char_p, C.c_int32, C.c_int64, C.c_void_p)),
    ("leak_user_data", C.c_void_p),
    ("clock", C.c_void_p),
    ("background_thread", C.c_int32),
    ("deadlock_detection", C.c_int32),
    ("maintenance_interval_ms", C.c_int64),
    ("slow_query_threshold_ms", C.c_int64),
    ("slow_query_capacity", C.c_int32),
    ("slowlog", C.c_void_p),
    ("connection_init_sql", C.c_char_p),
    ("connection_init", FN(C.c_int, C.c_void_p, C.c_void_p, ERR)),
    ("connection_init_user_data", C.c_void_p),
    ("stmt_stats", C.c_void_p),
    ("incidents", C.c_void_p),
    ("usage_alert_interval_ms", C.c_int64),
])

BePoolStats = struct("be_pool_stats", [("version", C.c_uint32)] + [
    (f, C.c_int32) for f in ("total", "in_use", "idle", "waiting", "opening", "min_conns",
                             "max_conns")] + [
    (f, C.c_int64) for f in ("acquires", "waits", "handoffs", "timeouts", "deadlocks",
                             "open_failures", "creates", "destroys", "validations", "broken",
                             "expired", "idle_closed", "rollbacks", "leaks", "wait_p50_ns",
                             "wait_p95_ns", "wait_p99_ns", "wait_max_ns", "oldest_waiter_ns",
                             "longest_held_ns")])

BeBatchOptions = struct("be_batch_options", [
    ("version", C.c_uint32),
    ("table", C.c_char_p),
    ("columns", C.POINTER(C.c_char_p)),
    ("column_count", C.c_size_t),
    ("key_column", C.c_char_p),
    ("where", C.c_char_p),
    ("where_params", C.c_void_p),
    ("order_by", C.POINTER(C.c_char_p)),
    ("order_by_count", C.c_size_t),
    ("relation", C.c_int32),
    ("strategy", C.c_int32),
    ("max_chunk", C.c_int32),
])

BeScopeOptions = struct("be_scope_options", [
    ("version", C.c_uint32),
    ("repeat_threshold", C.c_int32),
    ("log_level", C.c_int32),
])

BeSlowlogOptions = struct("be_slowlog_options", [
    ("version", C.c_uint32),
    ("threshold_ms", C.c_int64),
    ("capacity", C.c_int32),
    ("max_sql_bytes", C.c_int32),
    ("clock", C.c_void_p),
])

BeMailer = struct("be_mailer", [
    ("version", C.c_uint32),
    ("send", FN(C.c_int, C.c_char_p, C.c_char_p, C.c_char_p, C.c_void_p, ERR)),
    ("user_data", C.c_void_p),
])

BeAppOptions = struct("be_app_options", [
    ("version", C.c_uint32),
    ("database", C.c_char_p),
    ("driver", C.POINTER(BeDriver)),
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
    ("mailer", C.POINTER(BeMailer)),
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
    # host knobs
    ("cache_lru_mode", C.c_int32),
    ("cache_shard_count", C.c_int32),
    ("connection_init_sql", C.c_char_p),
    ("connection_init", FN(C.c_int, C.c_void_p, C.c_void_p, ERR)),
    ("connection_init_user_data", C.c_void_p),
    ("disable_metrics", C.c_int32),
    ("statement_stats_max", C.c_int32),
    ("incident_capacity", C.c_int32),
    ("target_api_p95_ms", C.c_int64),
    ("target_db_p95_ms", C.c_int64),
    ("target_error_rate", C.c_double),
])

BeUserInput = struct("be_user_input", [
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

BeAuditQueryOptions = struct("be_audit_query_options", [
    ("version", C.c_uint32),
    ("match_user", C.c_int32),
    ("user_id", C.c_int64),
    ("from_ms", C.c_int64),
    ("to_ms", C.c_int64),
    ("cursor", C.c_char_p),
    ("cursor_len", C.c_size_t),
    ("limit", C.c_int32),
])

BeTestkitOptions = struct("be_testkit_options", [
    ("version", C.c_uint32),
    ("users", C.c_int32),
    ("seed", FN(C.c_int, C.c_void_p, C.c_void_p, ERR)),
    ("seed_user_data", C.c_void_p),
    ("app_options", C.POINTER(BeAppOptions)),
    ("no_passwords", C.c_int32),
    ("database", C.c_char_p),
])

BeAuthSessionInfo = struct("be_auth_session_info", [
    ("version", C.c_uint32),
    ("session_id", C.c_int64),
    ("user_id", C.c_int64),
    ("created_at_ms", C.c_int64),
    ("last_used_at_ms", C.c_int64),
    ("expires_at_ms", C.c_int64),
])

BeIncident = struct("be_incident", [
    ("version", C.c_uint32),
    ("kind", C.c_int32),
    ("in_use", C.c_int32),
    ("idle", C.c_int32),
    ("waiting", C.c_int32),
    ("max_conns", C.c_int32),
    ("wall_ns", C.c_int64),
    ("value", C.c_int64),
    ("threshold", C.c_int64),
    ("suppressed", C.c_int64),
    ("message", C.c_char * 192),
])

BeStmtStatsOptions = struct("be_stmt_stats_options", [
    ("version", C.c_uint32),
    ("max_statements", C.c_int32),
    ("slow_threshold_ms", C.c_int64),
    ("burst_count", C.c_int32),
    ("burst_window_ms", C.c_int64),
    ("incidents", C.c_void_p),
    ("clock", C.c_void_p),
])

BeStmtStat = struct("be_stmt_stat", [("version", C.c_uint32), ("sql", C.c_char_p)] + [
    (f, C.c_int64) for f in ("calls", "errors", "rows", "total_ns", "mean_ns", "max_ns", "p50_ns",
                             "p95_ns", "p99_ns")])

BeOpStats = struct("be_op_stats", [("version", C.c_uint32), ("op", C.c_int32)] + [
    (f, C.c_int64) for f in ("calls", "errors", "server_errors", "timed", "total_ns", "p50_ns", "p95_ns",
                             "p99_ns", "max_ns")])

BeAppStatus = struct("be_app_status", [("version", C.c_uint32)] + [
    (f, C.c_int32) for f in ("ok", "db_reachable", "pool_total", "pool_in_use", "pool_idle",
                             "pool_waiting", "pool_max", "pool_alert_percent",
                             "pool_usage_percent", "api_p95_ok", "db_p95_ok", "error_rate_ok")] + [
    ("db_journal_mode", C.c_char * 16),
    ("database", C.c_char_p),
    ("db_size_bytes", C.c_int64),
    ("migration_version", C.c_int64),
    ("pool_timeouts", C.c_int64),
    ("pool_oldest_waiter_ns", C.c_int64),
    ("cache_entries", C.c_int64),
    ("cache_bytes", C.c_int64),
    ("cache_hit_ratio", C.c_double),
    ("api_calls", C.c_int64),
    ("api_p95_ns", C.c_int64),
    ("api_p95_target_ns", C.c_int64),
    ("db_queries", C.c_int64),
    ("db_p95_ns", C.c_int64),
    ("db_p95_target_ns", C.c_int64),
    ("api_server_errors", C.c_int64),
    ("error_rate", C.c_double),
    ("error_rate_target", C.c_double),
    ("incidents", C.c_int64),
    ("invalidation", C.c_int32),
    ("invalidation_down_since_ms", C.c_int64),
    ("invalidation_received", C.c_int64),
    ("invalidation_reconnects", C.c_int64),
])

BeAppMemory = struct("be_app_memory", [("version", C.c_uint32), ("pool_connections", C.c_int32)] + [
    (f, C.c_int64) for f in ("cache_bytes", "cache_charge_bytes", "metrics_bytes",
                             "pool_histogram_bytes", "stmt_stats_bytes", "incidents_bytes",
                             "db_memory_used", "db_memory_highwater", "conn_cache_bytes",
                             "conn_stmt_bytes", "conn_schema_bytes", "library_bytes")])

LAYOUTS = [BeAllocator, BeLogField, BeIncident, BeCacheOptions, BeCacheStats, BeDriver,
           BeStmtCacheStats, BeSqliteOptions, BeTxOptions, BeStmtStatsOptions, BeStmtStat,
           BePoolOptions, BePoolStats, BeBatchOptions, BeScopeOptions, BeSlowlogOptions, BeMailer,
           BeAppOptions, BeUserInput, BeAuditQueryOptions, BeTestkitOptions, BeAuthSessionInfo,
           BeOpStats, BeAppStatus, BeAppMemory]


# ---- what a binding does at load time -------------------------------------

def bind(lib):
    sigs = {
        "be_struct_info": (C.c_int, [C.POINTER(C.c_size_t), C.POINTER(C.c_uint32), C.c_char_p,
                                     C.c_size_t, ERR]),
        "be_struct_count": (C.c_size_t, []),
        "be_struct_name": (C.c_char_p, [C.c_size_t]),
        "be_constant": (C.c_int, [C.POINTER(C.c_int64), C.POINTER(C.c_char_p), C.c_char_p,
                                  C.c_size_t, ERR]),
        "be_constant_count": (C.c_size_t, []),
        "be_constant_name": (C.c_char_p, [C.c_size_t]),
        "be_nul_terminated": (C.c_size_t, []),
        "be_app_options_init": (C.c_int, [C.c_void_p, C.c_uint32]),
        "be_error_message": (C.c_char_p, [C.c_void_p]),
        "be_error_free": (None, [C.c_void_p]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args


def struct_info(lib, name):
    """(size, version) the loaded library uses for struct `name`, or None."""
    size, version = C.c_size_t(), C.c_uint32()
    rc = lib.be_struct_info(C.byref(size), C.byref(version), name.encode(), len(name), None)
    return (size.value, version.value) if rc == BE_OK else None


def size_problem(lib, layout):
    """None when ctypes agrees with the library on the size of `layout`."""
    info = struct_info(lib, layout.__name__)
    if info is None:
        return f"{layout.__name__}: the library has no such struct"
    if C.sizeof(layout) != info[0]:
        return f"{layout.__name__}: ctypes size {C.sizeof(layout)}, library {info[0]}"
    return None


def constant(lib, name):
    """A constant's value from the loaded library: an int, or bytes for text."""
    value, text = C.c_int64(), C.c_char_p()
    raw = name.encode()
    rc = lib.be_constant(C.byref(value), C.byref(text), raw, lib.be_nul_terminated(), None)
    if rc != BE_OK:
        raise KeyError(name)
    return text.value if text.value is not None else value.value


def enumerate_names(count_fn, name_fn):
    names = [name_fn(i).decode() for i in range(count_fn())]
    if name_fn(count_fn()) is not None:
        raise AssertionError("enumeration does not end with NULL")
    return names


# ---- what the headers say --------------------------------------------------

LINKAGE = {"BE_API", "BE_BEGIN_DECLS", "BE_END_DECLS"}
DEFINE_RE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(BE_[A-Z0-9_]+)(\(?)[ \t]*(.*?)[ \t]*$", re.M)
STRUCT_RE = re.compile(r"\btypedef\s+struct\s+(be_\w+)\s*\{(.*?)\}\s*(\w+)\s*;", re.S)


def header_texts(include_dirs):
    """Every public header's text, comments removed, continuations joined."""
    seen, texts = set(), []
    for d in include_dirs:
        for h in sorted(pathlib.Path(d, "backend").glob("*.h")):
            if h.name in seen:
                continue
            seen.add(h.name)
            text = re.sub(r"/\*.*?\*/", " ", h.read_text(), flags=re.S)
            text = re.sub(r"//[^\n]*", "", text).replace("\\\n", " ")
            texts.append((h.name, text))
    return texts


def header_macros(texts, problems):
    """name -> value text of every object-like BE_* constant macro."""
    macros = {}
    for hname, text in texts:
        for name, fn, value in DEFINE_RE.findall(text):
            if fn or name in LINKAGE or name.endswith("_INIT"):
                continue
            value = " ".join(value.split())
            if macros.get(name, value) != value:
                problems.append(f"{name} defined twice with different values ({hname})")
            macros[name] = value
    return macros


def evaluate(name, macros):
    """The value of macro `name` as be_constant() reports it."""
    value = macros[name]
    if value.startswith('"'):
        return ast.literal_eval(value).encode()
    expr = re.sub(r"\bINT64_C\(([^()]*)\)", r"(\1)", value)
    expr = expr.replace("(size_t)-1", "-1")  # size_t constants keep their bits as int64
    expr = re.sub(r"\bBE_[A-Z0-9_]+\b", lambda m: f"({evaluate(m.group(0), macros)})", expr)
    if not re.fullmatch(r"[0-9a-fA-FxX()<>|&+\-~ ]+", expr):
        raise ValueError(f"{name}: cannot evaluate {value!r}")
    return eval(expr)  # integer arithmetic only, checked above


def header_structs(texts):
    """name -> field names in order, for every public struct with fields."""
    structs = {}
    for _, text in texts:
        for tag, body, typedef in STRUCT_RE.findall(text):
            fields = []
            for decl in body.split(";"):
                decl = decl.strip()
                if not decl:
                    continue
                m = (re.search(r"\(\s*\*\s*(\w+)\s*\)\s*\(", decl) or
                     re.search(r"(\w+)\s*(?:\[[^\]]*\])?\s*$", decl))
                fields.append(m.group(1))
            structs[typedef] = fields
    return structs


# ---- what the C compiler says ----------------------------------------------

def c_layouts(toolchain, layouts, tmp):
    """{struct: (sizeof, {field: (offset, size)})} from a compiled program."""
    lines = ["#include <backend/backend.h>", "#include <stddef.h>", "#include <stdio.h>",
             "int main(void) {"]
    for lay in layouts:
        t = lay.__name__
        lines.append(f'  printf("{t} - %zu 0\\n", sizeof({t}));')
        for f, _ in lay._fields_:
            lines.append(f'  printf("{t} {f} %zu %zu\\n", offsetof({t}, {f}), '
                         f'sizeof((({t} *)0)->{f}));')
    lines += ["  return 0;", "}"]
    src, exe = os.path.join(tmp, "layouts.c"), os.path.join(tmp, "layouts")
    pathlib.Path(src).write_text("\n".join(lines) + "\n")
    ok, log = toolchain.compile(src, exe, "c11")
    if not ok:
        raise AssertionError("the layouts' C twin does not compile:\n" + log)
    ok, out = cprog.run(exe, tmp)
    if not ok:
        raise AssertionError("the layouts' C twin failed: " + out)
    result = {}
    for line in out.splitlines()[1:]:
        t, f, a, b = line.split()
        entry = result.setdefault(t, [0, {}])
        if f == "-":
            entry[0] = int(a)
        else:
            entry[1][f] = (int(a), int(b))
    return result


def layout_problems(lib, layout, header_fields, c_layout):
    """Everything wrong with one layout (an empty list when it is right)."""
    problems = []
    p = size_problem(lib, layout)
    if p:
        problems.append(p)
    names = [f for f, _ in layout._fields_]
    if names != header_fields:
        problems.append(f"{layout.__name__}: fields {names}, header {header_fields}")
    if c_layout is not None:
        for f, typ in layout._fields_:
            got = (getattr(layout, f).offset, C.sizeof(typ))
            if c_layout[1].get(f) != got:
                problems.append(f"{layout.__name__}.{f}: ctypes (offset, size) {got}, "
                                f"C {c_layout[1].get(f)}")
    return problems


# ---- the checks --------------------------------------------------------------

def check_structs(lib, structs, macros, c_info, problems):
    lib_names = enumerate_names(lib.be_struct_count, lib.be_struct_name)
    declared = {lay.__name__ for lay in LAYOUTS}
    if len(lib_names) != len(set(lib_names)):
        problems.append(f"the library lists a struct twice: {lib_names}")
    for what, names in (("the library", set(lib_names)), ("the headers", set(structs))):
        if names != declared:
            problems.append(f"structs in {what} but without a layout here: "
                            f"{sorted(names - declared)}; layouts not in {what}: "
                            f"{sorted(declared - names)}")
    for lay in LAYOUTS:
        if lay.__name__ not in structs:
            continue
        problems += layout_problems(lib, lay, structs[lay.__name__], c_info.get(lay.__name__))
        version_macro = "BE_" + lay.__name__[3:].upper() + "_VERSION"
        want = evaluate(version_macro, macros) if version_macro in macros else 0
        info = struct_info(lib, lay.__name__)
        if info is not None and info[1] != want:
            problems.append(f"{lay.__name__}: library version {info[1]}, header {want}")
        if info is not None and c_info[lay.__name__][0] != info[0]:
            problems.append(f"{lay.__name__}: library size {info[0]}, "
                            f"C {c_info[lay.__name__][0]}")
    if struct_info(lib, "be_app") is not None or struct_info(lib, "be_app_option") is not None:
        problems.append("be_struct_info() finds a name that is not a public struct")
    return len(lib_names)


def check_constants(lib, macros, problems):
    lib_names = enumerate_names(lib.be_constant_count, lib.be_constant_name)
    if len(lib_names) != len(set(lib_names)):
        problems.append("the library lists a constant twice")
    if set(lib_names) != set(macros):
        problems.append(f"constants in the headers but not the library: "
                        f"{sorted(set(macros) - set(lib_names))}; in the library but not the "
                        f"headers: {sorted(set(lib_names) - set(macros))}")
    for name in sorted(set(lib_names) & set(macros)):
        got, want = constant(lib, name), evaluate(name, macros)
        if got != want:
            problems.append(f"{name}: library {got!r}, header {want!r}")
    spot = {"BE_AUTH_TOKEN_LEN": 43, "BE_E_NOT_FOUND": -7, "BE_LOG_WARN": 30,
            "BE_TX_IMMEDIATE": 1, "BE_CACHE_TTL_FOREVER": -1, "BE_NUL_TERMINATED": -1,
            "BE_TESTKIT_PASSWORD": b"testkit-seed-pass-7Kq2"}
    for name, want in spot.items():
        if constant(lib, name) != want:
            problems.append(f"{name}: {constant(lib, name)!r}, expected {want!r}")
    if C.c_size_t(constant(lib, "BE_NUL_TERMINATED")).value != lib.be_nul_terminated() or \
            lib.be_nul_terminated() != 2 ** (8 * C.sizeof(C.c_size_t)) - 1:
        problems.append("BE_NUL_TERMINATED is not the largest size_t")
    err = C.c_void_p()
    rc = lib.be_constant(None, None, b"BE_APP_OPTIONS_INIT", 19, C.byref(err))
    if rc != BE_E_NOT_FOUND or b"BE_APP_OPTIONS_INIT" not in lib.be_error_message(err):
        problems.append(f"an _INIT macro is not a constant: rc {rc}")
    lib.be_error_free(err)
    return len(lib_names)


def check_truncation_is_caught(lib, structs, c_info, problems):
    """The checks cannot pass vacuously: remove one field, they fail."""
    # The bug this guards against: a be_app_options missing its last field ...
    short = struct("be_app_options", BeAppOptions._fields_[:-1])
    if size_problem(lib, short) is None:
        problems.append("a be_app_options without its last field passed the size check")
    # ... is too short for what be_app_options_init() writes.
    buf = (C.c_ubyte * (C.sizeof(BeAppOptions) + 16))(*([0xA5] * (C.sizeof(BeAppOptions) + 16)))
    if lib.be_app_options_init(buf, constant(lib, "BE_APP_OPTIONS_VERSION")) != BE_OK:
        problems.append("be_app_options_init failed")
    written = [i for i in range(C.sizeof(short), len(buf)) if buf[i] != 0xA5]
    if not written or max(written) >= C.sizeof(BeAppOptions):
        problems.append(f"be_app_options_init wrote bytes {written} past the short struct")
    # Every layout with any one field removed fails the checks.
    removals = by_size = 0
    for lay in LAYOUTS:
        for i in range(len(lay._fields_)):
            cut = struct(lay.__name__, lay._fields_[:i] + lay._fields_[i + 1:])
            removals += 1
            by_size += size_problem(lib, cut) is not None
            if not layout_problems(lib, cut, structs.get(lay.__name__), c_info.get(lay.__name__)):
                problems.append(f"{lay.__name__} without {lay._fields_[i][0]} passed the checks")
    return removals, by_size


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    cprog.add_arguments(parser)
    args = parser.parse_args()
    lib = C.CDLL(args.lib)
    bind(lib)
    problems = []
    texts = header_texts(args.include)
    macros = header_macros(texts, problems)
    structs = header_structs(texts)
    with tempfile.TemporaryDirectory() as tmp:
        c_info = c_layouts(cprog.Toolchain(args), LAYOUTS, tmp)
    nstructs = check_structs(lib, structs, macros, c_info, problems)
    nconstants = check_constants(lib, macros, problems)
    removals, by_size = check_truncation_is_caught(lib, structs, c_info, problems)
    for p in problems:
        print("FAIL:", p)
    if problems:
        sys.exit(1)
    print(f"ok: {nstructs} struct layouts (sizes, versions, fields, offsets), {nconstants} "
          f"constants; {removals} one-field truncations all caught ({by_size} by size alone)")


if __name__ == "__main__":
    main()
