#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""backend-cli end to end: every command run as a user would, its --json
output parsed, bad arguments (exit 2 and the usage), broken databases
(missing, locked, read-only, not SQLite: a message naming the file and a
documented exit code), passwords only from a prompt or stdin, and the
demo run twice on one file.

usage: test_cli.py PATH/TO/backend-cli"""
import json
import os
import pty
import select
import re
import sqlite3
import subprocess
import sys
import tempfile
import unittest

CLI = None

# The documented exit codes (backend-cli --help, README "Operating it").
OK, FAILURE, USAGE, VALIDATION, UNAUTHENTICATED, DENIED, NOT_FOUND, CONFLICT = 0, 1, 2, 3, 4, 5, 6, 7
UNAVAILABLE, INTERNAL = 9, 11
DATABASE_FAILURES = {UNAVAILABLE, INTERNAL}  # a database that cannot be used


def run(*args, db=None, stdin=None, env=None, cwd=None, timeout=120):
    argv = [CLI] + (["--db", db] if db else []) + list(args)
    e = dict(os.environ)
    e.pop("BACKEND_DB", None)
    e.update(env or {})
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=e, cwd=cwd, timeout=timeout)


class Cli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.db = os.path.join(cls.tmp.name, "app.db")
        r = run("init", db=cls.db)
        assert r.returncode == 0, r.stderr

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def ok(self, *args, stdin=None, db=None):
        r = run(*args, db=db or self.db, stdin=stdin)
        self.assertEqual(r.returncode, 0, f"{args}: {r.stderr}")
        return r

    def js(self, *args, stdin=None, db=None):
        return json.loads(self.ok("--json", *args, stdin=stdin, db=db).stdout)

    def fails(self, code, *args, stdin=None, db=None):
        r = run(*args, db=db or self.db, stdin=stdin)
        self.assertEqual(r.returncode, code, f"{args}: stdout {r.stdout!r} stderr {r.stderr!r}")
        self.assertTrue(r.stderr.strip(), f"{args}: no message on stderr")
        return r

    def add_user(self, email, name="Test User"):
        return self.js("user", "add", email, name)["id"]


class Basics(Cli):
    def test_help_lists_commands_and_exit_codes(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for word in ["init", "migrate status", "user add", "login", "role grant", "can", "audit verify",
                     "profile", "demo", "exit codes:", "--db PATH", "--json", "BACKEND_DB"]:
            self.assertIn(word, r.stdout)

    def test_help_of_every_command(self):
        top = ["version", "codes", "error-demo", "init", "login", "can", "profile", "demo"]
        subs = {"migrate": ["status", "up"], "user": ["add", "get", "list", "update", "disable", "delete",
                                                     "set-password"],
                "role": ["create", "grant", "revoke", "assign", "unassign"], "audit": ["list", "verify"]}
        for c in top:
            r = run(c, "--help")
            self.assertEqual(r.returncode, 0, c)
            self.assertIn(f"usage: backend-cli [--db PATH] [--json] {c}", r.stdout)
        for g, names in subs.items():
            listing = run(g, "--help")
            self.assertEqual(listing.returncode, 0, g)
            for n in names:
                self.assertIn(n, listing.stdout)
                r = run(g, n, "--help")
                self.assertEqual(r.returncode, 0, f"{g} {n}")
                self.assertIn(f"{g} {n}", r.stdout)

    def test_exit_code_table_matches_codes(self):
        codes = {c["name"]: c for c in json.loads(run("--json", "codes").stdout)}
        expect = {"BE_OK": OK, "BE_E_VALIDATION": VALIDATION, "BE_E_UNAUTHORIZED": UNAUTHENTICATED,
                  "BE_E_FORBIDDEN": DENIED, "BE_E_NOT_FOUND": NOT_FOUND, "BE_E_CONFLICT": CONFLICT,
                  "BE_E_SERIALIZATION": CONFLICT, "BE_E_RATE_LIMITED": 8, "BE_E_UNAVAILABLE": UNAVAILABLE,
                  "BE_E_BUSY": UNAVAILABLE, "BE_E_DB_UNREACHABLE": UNAVAILABLE,
                  "BE_E_POOL_EXHAUSTED": UNAVAILABLE, "BE_E_TIMEOUT": 10, "BE_E_STORAGE": INTERNAL,
                  "BE_E_INTERNAL": INTERNAL, "BE_E_UNSUPPORTED": 12}
        for name, code in expect.items():
            self.assertEqual(codes[name]["exit_code"], code, name)
        helptext = run("--help").stdout
        table = dict((int(m.group(1)), m.group(2)) for m in re.finditer(r"^\s+(\d+)  (.*)$", helptext, re.M))
        self.assertEqual(sorted(table), list(range(13)))

    def test_version_codes_error_demo(self):
        self.assertIn("libbackend", self.ok("version").stdout)
        v = self.js("version")
        self.assertTrue(v["match"])
        codes = self.js("codes")
        self.assertEqual(codes[0]["name"], "BE_OK")
        self.assertIn("BE_E_VALIDATION", self.ok("codes").stdout)
        p = self.js("error-demo")
        self.assertEqual(p["status"], 400)
        self.assertEqual([e["field"] for e in p["errors"]], ["email", "name"])


class Usage(Cli):
    def usage(self, *args):
        r = self.fails(USAGE, *args)
        self.assertIn("usage:", r.stderr)
        return r

    def test_bad_arguments_exit_2_with_usage(self):
        self.assertEqual(run().returncode, USAGE)
        self.usage("no-such-command")
        self.usage("user")
        self.usage("user", "frobnicate")
        self.usage("user", "add", "only-email@example.com")
        self.usage("user", "add", "a@example.com", "A", "extra")
        self.usage("user", "get", "1", "--no-such-option")
        self.usage("user", "list", "--limit", "0")
        self.usage("user", "list", "--limit", "ten")
        self.usage("profile", "no.such.op")
        self.usage("profile", "user.get", "-n", "-5")
        self.usage("profile", "user.get", "-c")
        self.usage("can", "1")
        self.usage("user", "get", "not-an-id")
        self.usage("--db")

    def test_usage_error_as_problem_json(self):
        r = run("--json", "user", "add", "x@example.com", db=self.db)
        self.assertEqual(r.returncode, USAGE)
        p = json.loads(r.stderr)
        self.assertIn("usage: backend-cli user add", p["detail"])

    def test_usage_error_naming_bytes_that_are_not_utf8(self):
        # The plain line shows the bytes as they are; --json problem JSON
        # with each bad byte as U+FFFD (before, --json printed nothing, and
        # the error describing it leaked; then a plain line).
        r = subprocess.run([CLI, "user", b"\xff\xfe"], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, USAGE)
        self.assertIn(b"unknown subcommand '\xff\xfe'", r.stderr)
        self.assertIn(b"usage:", r.stderr)
        r = subprocess.run([CLI, "--json", "user", b"\xff\xfe"], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, USAGE)
        self.assertIn("unknown subcommand '\ufffd\ufffd'", json.loads(r.stderr.decode("utf-8"))["detail"])


class Database(Cli):
    def test_init_and_migrate(self):
        db = os.path.join(self.tmp.name, "fresh.db")
        self.assertFalse(os.path.exists(db))
        r = self.js("init", db=db)
        self.assertTrue(r["created"])
        self.assertGreater(r["version"], 0)
        self.assertFalse(self.js("init", db=db)["created"])
        st = self.js("migrate", "status", db=db)
        self.assertTrue(st["up_to_date"])
        self.assertEqual(st["version"], st["library_version"])
        self.assertEqual([m["version"] for m in st["applied"]], list(range(1, st["version"] + 1)))
        self.assertIn("up to date", self.ok("migrate", "status", db=db).stdout)
        self.assertEqual(self.js("migrate", "up", db=db)["version"], st["version"])

    def test_behind_schema_shows_pending_and_up_applies(self):
        db = os.path.join(self.tmp.name, "old.db")
        self.ok("init", db=db)
        c = sqlite3.connect(db)
        latest = c.execute("SELECT max(version) FROM be_schema_migrations").fetchone()[0]
        c.execute("DELETE FROM be_schema_migrations WHERE version = ?", (latest,))
        c.commit()
        c.close()
        st = self.js("migrate", "status", db=db)
        self.assertFalse(st["up_to_date"])
        self.assertIn("behind", self.ok("migrate", "status", db=db).stdout)

    def test_backend_db_environment(self):
        db = os.path.join(self.tmp.name, "env.db")
        r = run("--json", "init", env={"BACKEND_DB": db})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["database"], db)
        self.assertTrue(os.path.exists(db))

    def test_default_database_is_in_the_current_directory(self):
        with tempfile.TemporaryDirectory() as d:
            r = run("init", cwd=d)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(os.path.exists(os.path.join(d, "backend.db")))

    def test_missing_database(self):
        db = os.path.join(self.tmp.name, "missing.db")
        for args in (["user", "list"], ["migrate", "status"], ["audit", "verify"]):
            r = self.fails(NOT_FOUND, *args, db=db)
            self.assertIn(db, r.stderr)
            self.assertIn("init", r.stderr)
        self.assertFalse(os.path.exists(db), "a read command must not create the file")
        r = run("--json", "user", "list", db=db)
        self.assertEqual(r.returncode, NOT_FOUND)
        p = json.loads(r.stderr)
        self.assertEqual(p["status"], 404)
        self.assertIn(db, p["detail"])

    def test_not_a_database(self):
        db = os.path.join(self.tmp.name, "junk.db")
        with open(db, "wb") as f:
            f.write(os.urandom(8192))
        for args in (["user", "list"], ["migrate", "status"], ["init"]):
            r = run(*args, db=db)
            self.assertEqual(r.returncode, INTERNAL, f"{args}: {r.stderr}")  # permanent, not "retry"
            self.assertIn(db, r.stderr)
        r = run("--json", "user", "list", db=db)
        self.assertEqual(r.returncode, INTERNAL)
        p = json.loads(r.stderr)
        self.assertIn(db, p["detail"])
        self.assertEqual(p["status"], 500)

    def test_directory_instead_of_file(self):
        r = run("user", "list", db=self.tmp.name)
        self.assertIn(r.returncode, DATABASE_FAILURES)
        self.assertIn(self.tmp.name, r.stderr)

    def test_locked_database(self):
        db = os.path.join(self.tmp.name, "locked.db")
        self.ok("init", db=db)
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            r = run("user", "add", "locked@example.com", "Locked", db=db)
            self.assertEqual(r.returncode, UNAVAILABLE, r.stderr)
            self.assertIn(db, r.stderr)
            self.assertIn("locked", r.stderr)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        self.ok("user", "add", "locked@example.com", "Locked", db=db)

    def test_read_only_database(self):
        db = os.path.join(self.tmp.name, "ro.db")
        self.ok("init", db=db)
        self.ok("user", "add", "before@example.com", "Before", db=db)
        if os.geteuid() == 0:  # root writes through file modes: ask SQLite for read-only
            target = f"file:{db}?mode=ro"
        else:
            os.chmod(db, 0o444)
            target = db
        r = run("user", "add", "ro@example.com", "Read Only", db=target)
        self.assertIn(r.returncode, DATABASE_FAILURES, r.stderr)
        self.assertIn(db, r.stderr)
        self.assertIn("readonly", r.stderr.replace("read-only", "readonly").replace("read only", "readonly"))


class Reviewed(Cli):
    """Defects a review found: parallel init, a read-only report that
    changed the journal mode, JSON with bytes that are not UTF-8, long or
    broken paths in error messages, file: URIs creating files, and
    arguments checked after the open."""

    def raw(self, *args, cwd=None):
        return subprocess.run([CLI] + list(args), capture_output=True, timeout=120, cwd=cwd)

    def test_json_output_with_bytes_not_utf8(self):
        r = self.raw("--json", "--db", b"bad\xff.db", "init", cwd=self.tmp.name)
        self.assertEqual(r.returncode, OK, r.stderr)
        self.assertEqual(json.loads(r.stdout.decode("utf-8"))["database"], "bad\ufffd.db")
        db = os.path.join(self.tmp.name, "hostname.db")
        self.ok("init", db=db)
        c = sqlite3.connect(db)
        c.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                  "applied_at INTEGER NOT NULL)")
        c.execute("INSERT INTO schema_migrations VALUES (1, CAST(X'6F6BFF21' AS TEXT), 0)")
        c.commit()
        c.close()
        r = self.raw("--json", "--db", db, "migrate", "status")
        self.assertEqual(r.returncode, OK, r.stderr)
        names = [m["name"] for m in json.loads(r.stdout.decode("utf-8"))["applied"] if m["host"]]
        self.assertEqual(names, ["ok\ufffd!"])

    def assert_names_file(self, r, name, code):
        self.assertEqual(r.returncode, code, r.stderr)
        text = r.stderr.decode("utf-8")  # UTF-8, whatever the path held
        self.assertNotIn("is not valid UTF-8", text)
        self.assertIn(name, text)

    def test_open_failure_with_path_not_utf8_or_long(self):
        plain = self.raw("--db", os.path.join(self.tmp.name, "nodir", "x.db"), "init")
        self.assertIn(plain.returncode, DATABASE_FAILURES, plain.stderr)
        bad = os.path.join(self.tmp.name, "nodir").encode() + b"\xff/x.db"
        self.assert_names_file(self.raw("--db", bad, "init"), "nodir\ufffd/x.db", plain.returncode)
        for n in (599, 600):
            long = os.path.join(self.tmp.name, "nodirx", "\u00e9" * n, "x.db")
            for extra in ([], ["--json"]):
                r = self.raw(*extra, "--db", long, "init")
                self.assert_names_file(r, long, plain.returncode)

    def test_json_errors_with_long_arguments_stay_json(self):
        for lead in ("", "x"):  # either parity of the byte a fixed buffer cut at
            long = os.path.join(self.tmp.name, lead + "/".join(["\u00e9" * 100] * 15))  # under PATH_MAX
            r = self.raw("--json", "--db", long, "migrate", "status")
            self.assertEqual(r.returncode, NOT_FOUND, r.stderr)
            self.assertEqual(json.loads(r.stderr.decode("utf-8"))["status"], 404)
            r = self.raw("--json", "--db", os.path.join(self.tmp.name, lead + "\u00e9" * 3000), "migrate", "status")
            self.assertIn(r.returncode, DATABASE_FAILURES | {NOT_FOUND}, r.stderr)
            self.assertIn("\u00e9", json.loads(r.stderr.decode("utf-8"))["detail"])
            r = self.raw("--json", "bogus" + lead + "\u00e9" * 3000)
            self.assertEqual(r.returncode, USAGE, r.stderr)
            self.assertIn("bogus" + lead + "\u00e9", json.loads(r.stderr.decode("utf-8"))["detail"])

    def parallel_inits(self, name, rounds=5, n=6):
        """[(exit code, stdout, stderr)] of n inits started together on a
        new file, for each round."""
        results = []
        for round_ in range(rounds):
            db = os.path.join(self.tmp.name, f"{name}{round_}.db")
            procs = [subprocess.Popen([CLI, "--json", "--db", db, "init"], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for _ in range(n)]
            results.append([(p.wait(timeout=120), *p.communicate()) for p in procs])
        return results

    def test_parallel_init_all_succeed(self):
        for round_, outs in enumerate(self.parallel_inits("parallel")):
            for rc, out, err in outs:
                self.assertEqual(rc, OK, f"round {round_}: {err}")

    def test_migrate_status_keeps_the_journal_mode(self):
        db = os.path.join(self.tmp.name, "rollback.db")
        self.ok("init", db=db)
        c = sqlite3.connect(db)
        self.assertEqual(c.execute("PRAGMA journal_mode=DELETE").fetchone()[0], "delete")
        c.close()
        self.assertTrue(self.js("migrate", "status", db=db)["up_to_date"])
        self.ok("migrate", "status", db=db)
        c = sqlite3.connect(db)
        self.assertEqual(c.execute("PRAGMA journal_mode").fetchone()[0], "delete",
                         "migrate status (a report) must not change the journal mode")
        c.close()

    def test_uri_database_is_not_created_by_reading_commands(self):
        for name, args in (("zzz.db", ["migrate", "status"]), ("yyy.db", ["user", "list"])):
            r = run(*args, db=f"file:{name}", cwd=self.tmp.name)
            self.assertEqual(r.returncode, NOT_FOUND, f"{args}: {r.stderr}")
            self.assertIn(name, r.stderr)
            self.assertFalse(os.path.exists(os.path.join(self.tmp.name, name)), f"{args} created {name}")
        self.ok("init", db=f"file:{os.path.join(self.tmp.name, 'uri.db')}")
        self.ok("user", "list", db=f"file:{os.path.join(self.tmp.name, 'uri.db')}")
        self.ok("user", "list", db=":memory:")

    def test_the_database_reason_is_shown_however_deep(self):
        # the SQL reason sits two causes below "migration 9 failed": it was
        # not printed, only "the database refused the SQL statement"
        db = os.path.join(self.tmp.name, "deep.db")
        self.ok("init", db=db)
        con = sqlite3.connect(db)
        con.execute("DROP TABLE be_users")
        con.execute("DELETE FROM be_schema_migrations WHERE version >= 9")
        con.commit()
        con.close()
        r = run("migrate", "up", db=db)
        self.assertEqual(r.returncode, INTERNAL, r.stderr)
        self.assertIn("no such table: be_users", r.stderr)

    def test_unusable_paths_are_permanent_failures(self):
        # exit 9 tells a script to retry; a directory or a path too long
        # never becomes usable (exit 11)
        for db, word in ((self.tmp.name, "directory"), ("x" * 5000 + ".db", "cannot use database file")):
            r = run("user", "list", db=db)
            self.assertEqual(r.returncode, INTERNAL, f"{db[:40]}: {r.stderr[:300]}")
            self.assertIn(word, r.stderr)

    def test_arguments_checked_before_the_database(self):
        missing = os.path.join(self.tmp.name, "absent.db")
        for args, word in ((["db", "slow-queries", "--top", "x"], "--top"), (["user", "get", "not-an-id"], "USER")):
            r = run(*args, db=missing)
            self.assertEqual(r.returncode, USAGE, f"{args}: {r.stderr}")
            self.assertIn(word, r.stderr)
        self.assertFalse(os.path.exists(missing))


class Users(Cli):
    def test_user_lifecycle(self):
        uid = self.add_user("Grace@Example.com", "Grace Hopper")
        u = self.js("user", "get", "grace@example.com")
        self.assertEqual((u["id"], u["email"], u["name"]), (uid, "grace@example.com", "Grace Hopper"))
        self.assertEqual(self.js("user", "get", str(uid))["id"], uid)
        self.assertIn("grace@example.com", self.ok("user", "get", str(uid)).stdout)
        u = self.js("user", "update", str(uid), "--name", "Grace B. Hopper", "--extra", '{"plan":"pro"}')
        self.assertEqual((u["name"], u["extra"]), ("Grace B. Hopper", {"plan": "pro"}))
        self.assertEqual(self.js("user", "disable", str(uid))["status"], 1)
        self.assertEqual(self.js("user", "update", str(uid), "--enable")["status"], 0)
        emails = [x["email"] for x in self.js("user", "list")["users"]]
        self.assertIn("grace@example.com", emails)
        self.assertEqual(self.js("user", "delete", str(uid))["deleted"], uid)
        self.fails(NOT_FOUND, "user", "get", str(uid))
        self.fails(NOT_FOUND, "user", "delete", "grace@example.com")

    def test_user_errors(self):
        self.add_user("dup@example.com")
        r = self.fails(CONFLICT, "user", "add", "DUP@example.com", "Again")
        self.assertIn("email", r.stderr)
        r = self.fails(VALIDATION, "user", "add", "not-an-email", "X")
        self.assertIn("email", r.stderr)
        r = run("--json", "user", "add", "not-an-email", "X", db=self.db)
        p = json.loads(r.stderr)
        self.assertEqual((r.returncode, p["status"], p["errors"][0]["field"]), (VALIDATION, 400, "email"))
        self.fails(USAGE, "user", "update", "dup@example.com")

    def test_list_pages(self):
        for i in range(3):
            self.add_user(f"page{i}@example.com")
        page = self.js("user", "list", "--limit", "2")
        self.assertEqual(len(page["users"]), 2)
        self.assertIsNotNone(page["next_cursor"])
        nxt = self.js("user", "list", "--limit", "2", "--cursor", page["next_cursor"])
        self.assertNotEqual(page["users"][0]["id"], nxt["users"][0]["id"])


class Passwords(Cli):
    PW = "correct horse battery staple\n"

    def test_password_from_stdin_and_login(self):
        self.add_user("alice@example.com", "Alice")
        self.assertTrue(self.js("user", "set-password", "alice@example.com", stdin=self.PW)["password_set"])
        r = self.js("login", "alice@example.com", stdin=self.PW)
        self.assertEqual(len(r["token"]), 43)
        self.assertIn("logged in as user", self.ok("login", "alice@example.com", stdin=self.PW).stdout)
        self.fails(UNAUTHENTICATED, "login", "alice@example.com", stdin="wrong password here\n")
        self.fails(VALIDATION, "login", "alice@example.com", stdin="")

    def test_password_never_from_argv(self):
        self.add_user("bob@example.com", "Bob")
        self.ok("user", "set-password", "bob@example.com", stdin=self.PW)
        pw = self.PW.strip()
        r = self.fails(USAGE, "login", "bob@example.com", pw, stdin=self.PW)
        self.assertIn("usage:", r.stderr)
        self.fails(USAGE, "login", "bob@example.com", "--password", pw, stdin=self.PW)
        self.fails(USAGE, "login", "bob@example.com", f"--password={pw}", stdin=self.PW)
        self.fails(USAGE, "user", "set-password", "bob@example.com", pw, stdin=self.PW)
        self.fails(USAGE, "user", "add", "carol@example.com", "Carol", "--password", pw)
        for c in (["login"], ["user", "set-password"], ["user", "add"]):
            self.assertNotIn("--password", run(*c, "--help").stdout)
        self.assertNotIn("--password", run("--help").stdout)

    def test_weak_password_refused(self):
        self.add_user("weak@example.com", "Weak")
        r = self.fails(VALIDATION, "user", "set-password", "weak@example.com", stdin="password\n")
        self.assertIn("password", r.stderr)


class Roles(Cli):
    def test_roles_and_can(self):
        uid = self.add_user("ed@example.com", "Ed")
        self.assertEqual(self.js("role", "create", "writer")["role"], "writer")
        self.fails(CONFLICT, "role", "create", "writer")
        self.ok("role", "grant", "writer", "posts:*")
        self.assertEqual(self.js("role", "assign", "writer", "ed@example.com")["user_id"], uid)
        r = self.ok("can", "ed@example.com", "posts:write")
        self.assertEqual(r.stdout.strip(), "allowed")
        self.assertTrue(self.js("can", str(uid), "posts:write")["allowed"])
        r = run("can", "ed@example.com", "users:delete", db=self.db)
        self.assertEqual((r.returncode, r.stdout.strip()), (DENIED, "denied"))
        r = run("--json", "can", "ed@example.com", "users:delete", db=self.db)
        self.assertEqual(r.returncode, DENIED)
        self.assertFalse(json.loads(r.stdout)["allowed"])
        self.ok("role", "revoke", "writer", "posts:*")
        self.assertEqual(run("can", "ed@example.com", "posts:write", db=self.db).returncode, DENIED)
        self.ok("role", "unassign", "writer", "ed@example.com")
        self.fails(NOT_FOUND, "can", "nobody@example.com", "posts:write")
        self.fails(NOT_FOUND, "role", "grant", "no-such-role", "posts:read")


class Audit(Cli):
    def test_list_and_verify(self):
        uid = self.add_user("audited@example.com", "Audited")
        rows = self.js("audit", "list", "--user", str(uid), "--limit", "5")["rows"]
        self.assertTrue(any(r["action"] == "user.create" and r["target_id"] == uid for r in rows))
        self.assertIn("user.create", self.ok("audit", "list").stdout)
        v = self.js("audit", "verify")
        self.assertTrue(v["intact"])
        self.assertGreater(v["rows"], 0)
        self.assertIn("intact", self.ok("audit", "verify").stdout)

    def test_verify_detects_tampering(self):
        db = os.path.join(self.tmp.name, "tamper.db")
        self.ok("init", db=db)
        self.ok("user", "add", "t@example.com", "T", db=db)
        self.ok("user", "add", "u@example.com", "U", db=db)
        c = sqlite3.connect(db)
        c.execute("UPDATE be_audit_log SET details = '{\"forged\":1}' WHERE id = (SELECT min(id) FROM be_audit_log)")
        c.commit()
        c.close()
        r = run("--json", "audit", "verify", db=db)
        self.assertEqual(r.returncode, FAILURE)
        self.assertFalse(json.loads(r.stdout)["intact"])


class Profile(Cli):
    def test_every_operation(self):
        for op, n in (("user.get", 300), ("user.get.uncached", 100), ("user.create", 20), ("auth.login", 2),
                      ("permission.check", 200), ("cache.get", 1000)):
            r = self.js("profile", op, "-n", str(n), "-c", "2")
            self.assertEqual((r["op"], r["calls"], r["threads"], r["errors"]), (op, n, 2, 0), op)
            self.assertTrue(0 < r["p50_ns"] <= r["p95_ns"] <= r["p99_ns"] <= r["max_ns"] * 1.02, r)
            self.assertEqual(sum(b["count"] for b in r["histogram"]), n)
        r = self.ok("profile", "user.get", "-n", "500")
        for word in ("p50", "p95", "p99", "histogram", "#"):
            self.assertIn(word, r.stdout)
        self.assertNotIn("\r", r.stderr, "no progress bar when stderr is not a terminal")


def run_pty(*args, db, answer=None, timeout=60):
    """Run backend-cli on a pseudo-terminal (stdin, stdout and stderr); type
    `answer` after the first prompt ending in ': '. Returns (exit code, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(CLI, [CLI, "--db", db] + list(args))
    out, typed = b"", False
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                os.kill(pid, 9)
                break
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
            if answer is not None and not typed and out.rstrip().endswith(b":"):
                os.write(fd, answer.encode() + b"\n")
                typed = True
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


class Terminal(Cli):
    def test_password_prompt_does_not_echo(self):
        self.add_user("tty@example.com", "Tty")
        self.ok("user", "set-password", "tty@example.com", stdin="a terminal passphrase here\n")
        code, out = run_pty("login", "tty@example.com", db=self.db, answer="a terminal passphrase here")
        self.assertEqual(code, 0, out)
        self.assertIn("Password:", out)
        self.assertIn("logged in as user", out)
        self.assertNotIn("a terminal passphrase here", out, "the password was echoed")

    def test_progress_on_a_terminal(self):
        db = os.path.join(self.tmp.name, "tty-demo.db")
        code, out = run_pty("demo", "--users", "40", db=db)
        self.assertEqual(code, 0, out)
        self.assertIn("seeding users", out)
        self.assertIn("40/40", out)
        self.assertIn("\r", out)
        code, out = run_pty("profile", "user.get", "-n", "2000", db=db)
        self.assertEqual(code, 0, out)
        self.assertIn("2000/2000", out)


class Operations(Cli):
    """db status, db slow-queries, memory, stats [--prometheus], incidents."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for i in range(5):
            run("user", "add", f"ops{i}@example.com", "Ops User", db=cls.db)

    def test_db_status_table_and_json(self):
        out = self.ok("db", "status", "--sample", "200").stdout
        for row in ("API p95", "DB query p95", "Error rate", "< 200 ms", "< 100 ms", "< 0.1 %", "PASS"):
            self.assertIn(row, out)
        targets = [l for l in out.splitlines() if l.startswith(("API p95", "DB query p95", "Error rate"))]
        self.assertEqual(len(targets), 3, out)
        for line in targets:  # the sample fills the Current column
            self.assertNotIn(" n/a ", line)
        r = self.js("db", "status", "--sample", "200")
        self.assertTrue(r["ok"])
        self.assertTrue(r["database"]["reachable"])
        self.assertGreater(r["database"]["size_bytes"], 0)
        self.assertEqual(r["database"]["journal_mode"], "wal")
        self.assertEqual([t["name"] for t in r["targets"]], ["api_p95", "db_query_p95", "error_rate"])
        self.assertTrue(all(t["ok"] and t["samples"] > 0 for t in r["targets"]), r["targets"])
        self.assertEqual(r["pool"]["alert_percent"], 80)

    def test_slow_queries_top_n_without_literals(self):
        r = self.js("db", "slow-queries", "--top", "3", "--sample", "100")
        top = r["statements"]["top"]
        self.assertEqual(len(top), 3)
        totals = [s["total_ns"] for s in top]
        self.assertEqual(totals, sorted(totals, reverse=True))
        self.assertFalse(any("ops1@example.com" in s["sql"] for s in top))
        self.assertIn("entries", r["slow_log"])
        out = self.ok("db", "slow-queries", "--top", "2", "--sample", "10").stdout
        self.assertIn("top 2 statements by total time", out)
        self.usage("db", "slow-queries", "--top", "0")

    def test_memory(self):
        r = self.js("memory", "--sample", "10")
        for key in ("library_bytes", "cache_bytes", "metrics_bytes", "stmt_stats_bytes", "db_memory_used"):
            self.assertGreater(r[key], 0, key)
        self.assertIn("SQLite (process, all connections)", self.ok("memory", "--sample", "0").stdout)

    def test_stats_json_table_and_prometheus(self):
        r = self.js("stats", "--sample", "100")
        ops = {o["op"]: o for o in r["operations"]}
        self.assertEqual(ops["user.get"]["calls"], 100)
        self.assertIn("user.get", self.ok("stats", "--sample", "10").stdout)
        text = self.ok("stats", "--prometheus", "--sample", "50").stdout
        self.assertIn("# TYPE backend_op_duration_seconds histogram", text)
        self.assertIn('backend_op_calls_total{op="user.get"} 50', text)
        for line in text.splitlines():
            self.assertTrue(line.startswith("# ") or re.match(r"^backend_\w+(\{.*\})? \S+$", line), line)

    def test_incidents(self):
        r = self.js("incidents", "--sample", "0")
        self.assertEqual(r["total"], 0)
        self.assertEqual(set(r["by_kind"]), {"pool_exhausted", "pool_deadlock", "db_unreachable", "pool_usage",
                                             "slow_queries"})
        self.assertIn("incidents in this run", self.ok("incidents", "--sample", "0").stdout)

    def test_missing_database_and_bad_sample(self):
        missing = os.path.join(self.tmp.name, "nope.db")
        for cmd in (["db", "status"], ["memory"], ["stats"], ["incidents"], ["db", "slow-queries"]):
            self.fails(NOT_FOUND, *cmd, db=missing)
        self.usage("db", "status", "--sample", "-1")
        self.usage("stats", "--sample", "x")

    def usage(self, *args):
        r = run(*args, db=self.db)
        self.assertEqual(r.returncode, USAGE, f"{args}: {r.stderr}")
        self.assertIn("usage:", r.stderr)


class Demo(Cli):
    def test_demo_twice_on_one_file(self):
        db = os.path.join(self.tmp.name, "demo.db")
        first = run("demo", "--users", "60", db=db)
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertNotIn("\r", first.stdout + first.stderr, "no progress bar when not a terminal")
        for word in ("seeded:", "N+1 query", "batch load:", "audit chain:", "intact", "API p95", "PASS"):
            self.assertIn(word, first.stdout)
        second = run("--json", "demo", "--users", "60", db=db)
        self.assertEqual(second.returncode, 0, second.stderr)
        r = json.loads(second.stdout)
        self.assertEqual((r["seed"]["users"], r["seed"]["users_created"]), (60, 0))
        self.assertGreater(r["seed"]["posts"], 0)
        self.assertTrue(r["login"])
        self.assertEqual(r["n_plus_one"]["naive_queries"], 50)
        self.assertGreaterEqual(r["n_plus_one"]["reports"], 1)
        self.assertEqual((r["n_plus_one"]["batch_queries"], r["n_plus_one"]["batch_reports"]), (1, 0))
        self.assertTrue(r["audit"]["intact"])
        self.assertEqual([t["name"] for t in r["status"]["targets"]], ["api_p95", "db_query_p95", "error_rate"])
        self.assertTrue(self.js("migrate", "status", db=db)["up_to_date"])

    def test_demo_positional_database(self):
        db = os.path.join(self.tmp.name, "demo2.db")
        r = run("demo", db, "--users", "5")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(db))


if __name__ == "__main__":
    CLI = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
