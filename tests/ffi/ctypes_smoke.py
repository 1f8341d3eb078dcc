#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Bindings' view of libbackend: dlopen the shared library with ctypes (as
a Python, Ruby or Node FFI binding would) and use the error, cache and
service APIs through plain C types only, from several threads.

usage: ctypes_smoke.py path/to/libbackend.so
"""
import ctypes as C
import json
import sys
import threading

BE_OK = 0
BE_E_VALIDATION = -4
BE_E_CONFLICT = -8
BE_E_NOT_FOUND = -7


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def bind(lib):
    sigs = {
        "be_version_string": (C.c_char_p, []),
        "be_version_number": (C.c_uint32, []),
        "be_error_new": (C.c_int, [C.POINTER(C.c_void_p), C.c_int32, C.c_char_p]),
        "be_error_new_n": (C.c_int, [C.POINTER(C.c_void_p), C.c_int32, C.c_void_p, C.c_size_t]),
        "be_error_message": (C.c_char_p, [C.c_void_p]),
        "be_error_field_name": (C.c_char_p, [C.c_void_p, C.c_size_t]),
        "be_error_add_field": (C.c_int, [C.c_void_p, C.c_char_p, C.c_char_p]),
        "be_error_http_status": (C.c_int32, [C.c_void_p]),
        "be_error_to_json": (C.c_int, [C.POINTER(C.c_void_p), C.POINTER(C.c_size_t), C.c_void_p]),
        "be_error_free": (None, [C.c_void_p]),
        "be_free": (None, [C.c_void_p]),
        "be_cache_new": (C.c_int, [C.POINTER(C.c_void_p), C.c_void_p, C.c_void_p]),
        "be_cache_set": (C.c_int, [C.c_void_p, C.c_char_p, C.c_size_t, C.c_char_p, C.c_size_t,
                                   C.c_int64, C.c_void_p]),
        "be_cache_get_copy": (C.c_int, [C.c_void_p, C.c_size_t, C.POINTER(C.c_size_t), C.c_void_p,
                                        C.c_char_p, C.c_size_t, C.c_void_p]),
        "be_cache_delete": (C.c_int, [C.c_void_p, C.c_char_p, C.c_size_t, C.c_void_p]),
        "be_cache_free": (None, [C.c_void_p]),
        "be_error_field_count": (C.c_size_t, [C.c_void_p]),
        "be_error_field_name": (C.c_char_p, [C.c_void_p, C.c_size_t]),
        "be_testkit_new": (C.c_int, [C.POINTER(C.c_void_p), C.c_void_p, C.c_void_p]),
        "be_testkit_app": (C.c_void_p, [C.c_void_p]),
        "be_testkit_free": (None, [C.c_void_p]),
        "be_user_get_by_email": (C.c_int, [C.POINTER(C.c_void_p), C.c_void_p, C.c_void_p,
                                           C.c_size_t, C.POINTER(C.c_void_p)]),
        "be_perm_role_create": (C.c_int, [C.c_void_p, C.c_void_p, C.c_int64, C.c_char_p,
                                          C.c_size_t, C.POINTER(C.c_void_p)]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args


def test_version(lib):
    v = lib.be_version_string().decode()
    n = lib.be_version_number()
    parts = [int(x) for x in v.split(".")[:3]]
    check(n == (parts[0] << 16) | (parts[1] << 8) | parts[2], f"version {v} vs number {n}")


def test_error_json(lib):
    err = C.c_void_p()
    check(lib.be_error_new(C.byref(err), BE_E_VALIDATION, b"bad \"input\"\n\x01") == BE_OK,
          "be_error_new")
    check(lib.be_error_add_field(err, b"email", b"is taken") == BE_OK, "add_field")
    check(lib.be_error_http_status(err) == 400, "http status")
    out, n = C.c_void_p(), C.c_size_t()
    check(lib.be_error_to_json(C.byref(out), C.byref(n), err) == BE_OK, "to_json")
    text = C.string_at(out, n.value).decode("utf-8")  # valid UTF-8 even from bad input
    lib.be_free(out)
    lib.be_error_free(err)
    doc = json.loads(text)
    check(doc["status"] == 400 and doc["code"] == BE_E_VALIDATION, f"json fields: {doc}")
    check(doc["errors"] == [{"field": "email", "detail": "is taken"}], f"field errors: {doc}")
    check(doc["detail"] == 'bad "input"\n\x01', f"detail: {doc['detail']!r}")
    # text with a length: 0 is empty (the pointer is not read), NUL and bad UTF-8 are refused
    check(lib.be_error_new_n(C.byref(err), BE_E_VALIDATION, C.c_void_p(1), 0) == BE_OK
          and lib.be_error_message(err) == b"", "length 0 is the empty string")
    lib.be_error_free(err)
    for bad in (b"a\0b", b"\xff"):
        check(lib.be_error_new_n(C.byref(err), BE_E_CONFLICT, bad, len(bad)) == BE_E_VALIDATION
              and lib.be_error_field_name(err, 0) == b"message", f"refused: {bad!r}")
        lib.be_error_free(err)
    check(lib.be_error_to_json(C.byref(out), None, None) != BE_OK, "NULL error is refused")


def test_cache_threads(lib):
    cache = C.c_void_p()
    check(lib.be_cache_new(C.byref(cache), None, None) == BE_OK, "be_cache_new")
    for i in range(100):
        k = f"user:{i}".encode()
        v = f"profile {i}".encode()
        check(lib.be_cache_set(cache, k, len(k), v, len(v), 0, None) == BE_OK, "set")
    errors = []

    def reader(seed):
        buf = C.create_string_buffer(64)
        n = C.c_size_t()
        for j in range(2000):
            i = (seed * 31 + j) % 120
            k = f"user:{i}".encode()
            rc = lib.be_cache_get_copy(buf, 64, C.byref(n), cache, k, len(k), None)
            want = f"profile {i}".encode()
            if i < 100 and (rc != BE_OK or buf.raw[:n.value] != want):
                errors.append((i, rc, buf.raw[:n.value]))
            if i >= 100 and rc != BE_E_NOT_FOUND:
                errors.append((i, rc))

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not errors, f"cache reads from threads: {errors[:3]}")
    small = C.create_string_buffer(4)
    n = C.c_size_t()
    check(lib.be_cache_get_copy(small, 4, C.byref(n), cache, b"user:1", 6, None) == BE_E_VALIDATION
          and n.value == len(b"profile 1"), "too-small buffer reports the length")
    check(lib.be_cache_delete(cache, b"user:1", 6, None) == BE_OK, "delete")
    check(lib.be_cache_get_copy(small, 4, C.byref(n), cache, b"user:1", 6, None) == BE_E_NOT_FOUND,
          "deleted")
    lib.be_cache_free(cache)


def field_error(lib, rc, err, field):
    """rc is a validation error naming field; frees err."""
    ok = rc == BE_E_VALIDATION and lib.be_error_field_count(err) >= 1 and \
        lib.be_error_field_name(err, 0) == field
    lib.be_error_free(err)
    return ok


def test_services_strings(lib):
    kit = C.c_void_p()
    check(lib.be_testkit_new(C.byref(kit), None, None) == BE_OK, "be_testkit_new")
    app = lib.be_testkit_app(kit)
    # Rust's and Go's empty strings: a dangling non-NULL pointer, length 0
    user, err = C.c_void_p(), C.c_void_p()
    rc = lib.be_user_get_by_email(C.byref(user), app, C.c_void_p(1), 0, C.byref(err))
    check(field_error(lib, rc, err, b"email"), "empty email by length is a field error")
    # Python bytes carry their length: an embedded NUL is refused, not cut
    err = C.c_void_p()
    rc = lib.be_perm_role_create(None, app, 0, b"edi\0tor", 7, C.byref(err))
    check(field_error(lib, rc, err, b"role"), "embedded NUL in a role name")
    check(lib.be_perm_role_create(None, app, 0, b"editor", 6, None) == BE_OK, "role by length")
    lib.be_testkit_free(kit)


def main():
    if len(sys.argv) != 2:
        fail(__doc__)
    lib = C.CDLL(sys.argv[1])
    bind(lib)
    test_version(lib)
    test_error_json(lib)
    test_cache_threads(lib)
    test_services_strings(lib)
    print("ok: version, error JSON, cache from 4 threads, service strings through ctypes")


if __name__ == "__main__":
    main()
