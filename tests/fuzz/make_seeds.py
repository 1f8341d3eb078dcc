#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpora tests/fuzz/corpus/<harness>/seed-* : a few small
inputs per harness, encoded the way each harness decodes its bytes
(fuzz_support.c: fz_u8/u16/u32/i64 big-endian, fz_bytes = a length of one
byte when the cap is below 256, else two, then the bytes), so that fuzzing
starts from calls that succeed. The committed files are this script's
output; crash inputs found later are added next to them (crash-*).

    python3 tests/fuzz/make_seeds.py      # rewrites the seed-* files
"""
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def u8(v): return struct.pack(">B", v & 0xFF)
def u16(v): return struct.pack(">H", v & 0xFFFF)
def u32(v): return struct.pack(">I", v & 0xFFFFFFFF)
def i64(v): return struct.pack(">q", v)


def b8(s):
    s = s.encode() if isinstance(s, str) else s
    return u8(len(s)) + s


def b16(s):
    s = s.encode() if isinstance(s, str) else s
    return u16(len(s)) + s


def error_seeds():
    # make: pick (index into codes; 3 = BE_E_VALIDATION), text: how, len16, bytes
    new = lambda pick, how, msg: u8(pick) + u8(how) + b16(msg)
    field = lambda f, m: u8(0) + u8(0) + b16(f) + u8(2) + b16(m)
    yield new(3, 2, "bad input") + field("email", "is not valid") + field("name", 'has "quotes"')
    yield new(6, 0, "") + u8(1) + new(0, 2, "wrapped \\ \x01 \t")
    yield new(3, 2, "caf\xe9 \U0001F600".encode("utf-8")) + field("x", b"\xff\xfe")
    yield new(3, 2, b"nul\x00inside") + u8(2) + i64(19) + u8(3) + u32(1)
    yield new(250, 2, "unknown code") + u32(12345)


def cursor_seeds():
    yield u8(4) + u32(5) + b8("")                       # users, first page 5
    yield u8(4 | 128) + u32(3) + b8("") + u8(ord("U")) + i64(5)
    yield u8(0) + u32(7) + b8("")                       # audit, first page
    yield u8(128) + u32(4) + b8("") + u8(ord("A")) + i64(10)
    yield u8(8 | 32) + u32(2) + b8("AAAAAAAAAAAA") + u8(1) + u8(1) + i64(0)
    yield u8(4 | 1) + u32(0) + b8("VQAAAAAAAAAB")


def token_seeds():
    yield u8(1) + u8(0) + u8(5) + u8(0) + u8(ord("A"))  # live token, one byte changed
    yield u8(1) + u8(0) + u8(42) + u8(1)                 # live token, cut
    yield u8(0) + b8("A" * 43)
    yield u8(2) + b8("A" * 20 + "\x00" + "B" * 22)
    yield u8(0) + b8("not a token at all ~~~ ===")


def password_seeds():
    yield u8(1) + b16("correct horse battery staple") + b16("user1@example.test")
    yield u8(0) + b16("short") + b16("USER2@Example.test ")
    yield u8(3) + b16("p\xe4ssw\xf6rd with \u00fcml\u00e4uts".encode()) + b16("user0@example.test")
    yield u8(1) + b16("aaaaaaaaaaaaaaaa") + b16("nobody@example.test")
    yield u8(16) + b16(b"\xff\xfe invalid utf8 password") + b16(b"x@y\x00z")


def perm_seeds():
    # op % 10: 0 create, 1 delete, 2 grant, 3 revoke, 4 assign, 5 unassign,
    # 6-7 check, 8 list, 9 covers; names: a pool index (< 224)
    role, perm = u8, u8
    yield (u8(0) + role(2) + u8(2) + role(2) + perm(3) + u8(4) + u8(1) + role(2) +
           u8(6) + u8(1) + perm(1) + u8(8) + u8(1))
    yield u8(3) + role(1) + perm(1) + u8(6) + u8(1) + perm(1) + u8(8) + u8(2)
    yield u8(1) + role(0) + u8(6) + u8(0) + perm(0) + u8(0) + role(0)
    yield u8(2) + role(1) + perm(7) + u8(9) + perm(3) + perm(1) + u8(7) + u8(3) + perm(1)
    yield u8(0) + u8(224) + b8("bad role!") + u8(2) + role(4) + u8(225) + b8("x:\x00y")


def user_input(email, name, bio, fields=0x1f, how=0, extra=None, status=None):
    out = u8(how | (1 if extra is not None else 0) | (0x40 if status is not None else 0))
    out += b16(email) + b16(name) + b16(bio)
    if extra is not None:
        out += b16(extra)
    out += u8(fields)
    if status is not None:
        out += u8(status)
    return out


def user_seeds():
    create = lambda *a, **k: u8(0) + user_input(*a, **k)
    update = lambda pick, *a, **k: u8(1) + u8(pick) + user_input(*a, **k)
    yield create("  New.User@Example.COM ", " New User ", "hello\nworld") + u8(3) + u8(3) + u8(0) + u8(1) + u8(2)
    yield create("user1@example.test", "Dup", "") + u8(4) + b16("USER1@example.test")
    yield update(1, "renamed@example.test", "Renamed", "bio", fields=0x3, extra='{"k":1}') + u8(2) + u8(2)
    yield update(0, "", "", "", fields=0x10, status=2) + update(2, "x@@y", "\x01", "", fields=0x7)
    yield create("caf\xe9@exampl\xe9.test", "Jos\xe9", "b", how=2) + u8(3) + u8(4) + u8(0) + u8(0) + u8(250) + u8(251)


def cache_seeds():
    # a, b, [u16 max_bytes if a & 0x20], then (op, key, args...)
    yield (u8(0) + u8(0) + u8(0) + u8(1) + u8(64) + b8("v1") + u8(2) + u8(1) + u8(3) + u8(1) + u8(1) +
           u8(5) + u8(1) + u8(2) + u8(1) + u8(10) + u8(0))
    yield (u8(0x40) + u8(10) + u8(0) + u8(2) + u8(0) + b8("ttl") + u8(7) + u8(0) + u8(9) +
           u8(2) + u8(2) + u8(10) + u8(0))
    yield (u8(0x11) + u8(2) + u8(0) + u8(3) + u8(64) + b8("a") + u8(0) + u8(4) + u8(64) + b8("b") +
           u8(0) + u8(5) + u8(64) + b8("c") + u8(2) + u8(3) + u8(10) + u8(0))
    yield (u8(0x20) + u8(1) + u16(600) + u8(0) + u8(1) + u8(100) + b8("x" * 200) + u8(10) + u8(0))
    yield (u8(0) + u8(0) + u8(4) + u8(1) + u8(0) + b8("loaded") + u8(6) + u8(1) + b8("user:") +
           u8(2) + u8(1) + u8(0x86) + u8(0) + b8("user:") + u8(137) + u8(0) + u8(10) + u8(0))


def batch_seeds():
    # o (bit0 text, strategy, relation, order), chunk, n, key picks
    yield u8(0) + u8(0) + u8(6) + bytes([3, 5, 3, 0, 7, 41])
    yield u8(2) + u8(2) + u8(5) + bytes([2, 6, 2, 245, 46])
    yield u8(4) + u8(0) + u8(4) + bytes([4, 8, 12, 13])
    yield u8(1) + u8(1) + u8(6) + bytes([1, 3, 4, 5, 1, 6])
    yield u8(1 | 32) + u8(0) + u8(3) + bytes([2, 200]) + b8(b"t\xffx") + bytes([8])


def cli_seeds():
    # the command line after the program's name, arguments split by NUL
    line = lambda *args: b"\x00".join(a.encode() if isinstance(a, str) else a for a in args)
    yield line("version")
    yield line("--json", "codes")
    yield line("error-demo")
    yield line("user", "add", "ada@example.com", "Ada", "--bio", "first", "--extra", '{"k":1}')
    yield line("--json", "user", "add", "grace@example.com", "Grace")
    yield line("user", "list", "--limit", "5", "--cursor", "AAAA")
    yield line("user", "get", "1")
    yield line("user", "update", "ada@example.com", "--name=Ada L", "--enable")
    yield line("user", "set-password", "1")
    yield line("login", "ada@example.com")
    yield line("role", "create", "editor")
    yield line("role", "grant", "editor", "posts:*")
    yield line("can", "1", "posts:write")
    yield line("audit", "list", "--user", "1", "--limit", "3")
    yield line("--json", "audit", "verify")
    yield line("migrate", "status")
    yield line("db", "slow-queries", "--top", "3", "--sample", "5")
    yield line("stats", "--prometheus", "--sample=2")
    yield line("--db", "notadb", "memory", "--sample", "1")
    yield line("--db=dir", "incidents", "--sample", "0")
    yield line("--db", ":memory:", "init")
    yield line("profile", "--help")
    yield line("user", "--bogus")
    yield line("user", "delete", "--", "-5")


def main():
    gens = {"error": error_seeds, "cursor": cursor_seeds, "token": token_seeds,
            "password": password_seeds, "perm": perm_seeds, "user": user_seeds,
            "cache": cache_seeds, "batch": batch_seeds, "cli": cli_seeds}
    for name, gen in gens.items():
        d = os.path.join(ROOT, name)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            if f.startswith("seed-"):
                os.remove(os.path.join(d, f))
        for i, data in enumerate(gen()):
            with open(os.path.join(d, "seed-%d" % (i + 1)), "wb") as f:
                f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
