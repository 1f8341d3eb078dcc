#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Recompute a libbackend audit chain from its rows, using only the
encoding backend/audit.h documents ("Row hash", "Keyed chain") and
Python's hashlib.blake2b -- the check that the header says enough for a
program in another language to verify the log.

usage:
  recompute_chain.py --db FILE [--key HEX]   check one database; exit 0 when
                                             every row recomputes
  recompute_chain.py --writer WRITE_CHAIN    the test: run the C program
                                             tests/audit/write_chain.c
                                             into a temporary directory
                                             and check both logs it writes
"""
import argparse
import hashlib
import os
import sqlite3
import subprocess
import sys
import tempfile

DOMAIN = b"libbackend.audit.v1\0"
KEY_DOMAIN = b"libbackend.audit.key.v1\0"


def u64(v):
    """An int64 as 8 bytes: two's complement, big-endian."""
    return (v & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")


def lp(text):
    """A length-prefixed string: 8-byte big-endian byte length, then the bytes."""
    b = text.encode("utf-8")
    return u64(len(b)) + b


def blake(data, key):
    return hashlib.blake2b(data, digest_size=32, key=key or b"").digest()


def row_hash(row, prev, key):
    rid, actor, action, ttype, target, at, details = row
    data = (DOMAIN + u64(rid) + u64(actor) + lp(action) + lp(ttype) + u64(target) + u64(at)
            + lp(details) + prev)
    return blake(data, key)


def read_log(path):
    """(rows, keyed_from, key_check): rows are (fields, prev_hash, hash) in id order."""
    db = sqlite3.connect(path)
    rows = [((r[0], r[1], r[2], r[3], r[4], r[5], r[6]), bytes(r[7]), bytes(r[8]))
            for r in db.execute("SELECT id, actor_id, action, target_type, target_id, at,"
                                " details, prev_hash, hash FROM be_audit_log ORDER BY id")]
    rec = db.execute("SELECT keyed_from, key_check FROM be_audit_key WHERE id = 1").fetchone()
    db.close()
    return rows, (rec[0] if rec else None), (bytes(rec[1]) if rec else None)


def first_bad(rows, key, keyed_from):
    """0 when every row recomputes (rows below keyed_from unkeyed, from it on
    keyed with key); else the first id that does not."""
    prev, prev_id = bytes(32), 0
    for fields, stored_prev, stored in rows:
        rid = fields[0]
        k = key if keyed_from is not None and rid >= keyed_from else None
        if rid != prev_id + 1 or stored_prev != prev or row_hash(fields, prev, k) != stored:
            return rid
        prev, prev_id = stored, rid
    return 0


def check_db(path, key):
    """Check one database as a host would; returns the first bad id (0: intact)."""
    rows, keyed_from, key_check = read_log(path)
    if keyed_from is not None:
        if key is None:
            sys.exit(f"{path}: the log is keyed: give --key")
        if blake(KEY_DOMAIN + u64(keyed_from), key) != key_check:
            print(f"{path}: key_check does not match (wrong key or edited record):"
                  " judging every row keyed")
            keyed_from = 1
    return first_bad(rows, key, keyed_from)


def expect(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


def run_test(writer):
    key = os.urandom(32)
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([writer, d, key.hex()], check=True)
        rows, keyed_from, _ = read_log(os.path.join(d, "unkeyed.db"))
        expect(len(rows) >= 10 and keyed_from is None, f"unkeyed.db holds {len(rows)} rows, no key")
        expect(first_bad(rows, None, None) == 0, "unkeyed.db: every row recomputes unkeyed")
        expect(first_bad(rows, key, 1) == 1, "unkeyed.db: a keyed recomputation differs")
        expect(any(r[0][4] < 0 for r in rows) and any(not r[0][6].isascii() for r in rows),
               "unkeyed.db: negative ids and non-ASCII details are covered")

        path = os.path.join(d, "keyed.db")
        rows, keyed_from, key_check = read_log(path)
        expect(keyed_from is not None and 1 < keyed_from <= len(rows),
               f"keyed.db: unkeyed rows 1..{keyed_from - 1}, keyed from {keyed_from}"
               f" to {len(rows)}")
        expect(blake(KEY_DOMAIN + u64(keyed_from), key) == key_check,
               "keyed.db: key_check recomputes with the key")
        expect(check_db(path, key) == 0, "keyed.db: every row recomputes (unkeyed, then keyed)")
        expect(first_bad(rows, None, None) == keyed_from,
               "keyed.db: an unkeyed recomputation fails at the first keyed row")
        expect(first_bad(rows, os.urandom(32), keyed_from) == keyed_from,
               "keyed.db: another key fails at the first keyed row")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db")
    ap.add_argument("--key", help="the audit key in hex")
    ap.add_argument("--writer")
    a = ap.parse_args()
    if a.writer:
        run_test(a.writer)
        return 0
    if not a.db:
        ap.error("give --db or --writer")
    bad = check_db(a.db, bytes.fromhex(a.key) if a.key else None)
    print("intact" if bad == 0 else f"first bad row: {bad}")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
