# SPDX-License-Identifier: MIT
"""The services through the binding, on a real SQLite file."""
import gc
import os
import sqlite3
import tempfile
import threading
import unittest
import weakref

from support import PASSWORD, AppTest, fast_app, refused_option  # first: it finds the package
import libbackend as lb


class Users(AppTest):
    def test_create_get_update_delete(self):
        u = self.app.users.create(" Ada@Example.COM ", "Ada", bio="Analyst",
                                  extra={"plan": "pro"})
        self.assertEqual((u.email, u.name, u.bio, u.extra, u.status, u.active),
                         ("ada@example.com", "Ada", "Analyst", {"plan": "pro"}, "active", True))
        self.assertGreater(u.created_at_ms, 0)
        self.assertEqual(self.app.users.get(u.id), u)
        self.assertEqual(self.app.users.get_by_email("ADA@example.com"), u)
        v = self.app.users.update(u.id, name="Ada L.", status="disabled", actor=u.id)
        self.assertEqual((v.name, v.status, v.active, v.bio), ("Ada L.", "disabled", False,
                                                                 "Analyst"))
        self.assertEqual(self.app.users.get(u.id).name, "Ada L.")
        with self.assertRaises(lb.ValidationError) as cm:
            self.app.users.update(u.id)  # no field to change
        self.assertEqual(cm.exception.fields[0].field, "fields")
        with self.assertRaises(ValueError):
            self.app.users.update(u.id, status="sleeping")
        self.app.users.delete(u.id)
        with self.assertRaises(lb.NotFoundError):
            self.app.users.get(u.id)

    def test_fresh_read_bypasses_the_cache(self):
        u = self.user(password=None)
        self.app.users.get(u.id)  # cached now
        with sqlite3.connect(self.db) as db:  # another program changes the row
            db.execute("UPDATE be_users SET name = 'Changed' WHERE id = ?", (u.id,))
        self.assertEqual(self.app.users.get(u.id).name, "Ada")
        self.assertEqual(self.app.users.get(u.id, fresh=True).name, "Changed")
        self.assertEqual(self.app.users.get(u.id).name, "Changed")  # refreshed

    def test_list_pages_and_get_many(self):
        ids = [self.app.users.create(f"u{i}@example.com", f"U{i}").id for i in range(7)]
        page = self.app.users.list(limit=3)
        self.assertEqual([u.id for u in page.items], ids[:3])
        seen = list(page.items)
        while page.next_cursor is not None:
            page = self.app.users.list(limit=3, cursor=page.next_cursor)
            seen += page.items
        self.assertEqual([u.id for u in seen], ids)
        self.assertEqual([u.id for u in self.app.users], ids)
        many = self.app.users.get_many([ids[2], 999, ids[0], ids[2]])
        self.assertEqual([u and u.id for u in many], [ids[2], None, ids[0], ids[2]])
        self.assertEqual(self.app.users.get_many([]), [])
        with self.assertRaises(lb.ValidationError) as cm:
            self.app.users.list(cursor="garbage")
        self.assertEqual(cm.exception.fields[0].field, "cursor")

    def test_data_is_in_the_file(self):
        self.user(password=None)
        self.app.close()
        with sqlite3.connect(self.db) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        self.assertTrue(any("users" in t for t in tables), tables)
        with fast_app(database=self.db) as again:
            self.assertEqual(again.users.get_by_email("ada@example.com").name, "Ada")


class Prefix(unittest.TestCase):
    """table_prefix: the library's tables beside a host's own, and two apps
    apart in one file."""

    def test_two_prefixes_and_host_tables_in_one_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            db = os.path.join(tmp, "shared.db")
            with sqlite3.connect(db) as host:
                host.execute("CREATE TABLE users(id INTEGER PRIMARY KEY, login TEXT)")
                host.execute("INSERT INTO users(login) VALUES ('host-row')")
            with fast_app(database=db, table_prefix="a_") as a, \
                    fast_app(database=db, table_prefix="b_") as b:
                a.users.create("ada@example.com", "Ada")
                self.assertEqual(list(b.users), [])
                b.users.create("ada@example.com", "Other Ada")  # no conflict: apart
                self.assertEqual([u.name for u in a.users], ["Ada"])
            with sqlite3.connect(db) as host:
                self.assertEqual(host.execute("SELECT login FROM users").fetchall(),
                                 [("host-row",)])
                names = {r[0] for r in host.execute("SELECT name FROM sqlite_master")}
            self.assertIn("a_users", names)
            self.assertIn("b_users", names)

    def test_knobs(self):
        """connection_init_sql runs on every pooled connection; the cache's
        mode and shards are taken."""
        with tempfile.TemporaryDirectory() as tmp:
            with fast_app(database=os.path.join(tmp, "k.db"), cache_lru_mode="exact",
                          cache_shard_count=4, pool_min=2,
                          connection_init_sql="CREATE TEMP TABLE IF NOT EXISTS host_scratch(x)"
                          ) as app:
                self.assertEqual(app.cache_stats()["shard_count"], 4)
                app.users.create("k@example.com", "K")
            with self.assertRaises(lb.BackendError):
                fast_app(database=os.path.join(tmp, "k.db"),
                         connection_init_sql="THIS IS NOT SQL").users.get(1)
        refused_option(self, "cache_shard_count", cache_shard_count=5000)
        with self.assertRaises(ValueError):
            fast_app(cache_lru_mode="fifo")

    def test_bad_prefix_is_a_field_error(self):
        refused_option(self, "table_prefix", table_prefix="1-bad")


class Auth(AppTest):
    def test_login_verify_logout(self):
        u = self.user()
        login = self.app.auth.login("ADA@example.com", PASSWORD)
        self.assertEqual(login.user_id, u.id)
        self.assertEqual(len(login.token), lb._native_instance().K["BE_AUTH_TOKEN_LEN"])
        self.assertEqual(self.app.auth.verify(login.token), u.id)
        s = self.app.auth.verify_session(login.token)
        self.assertEqual(s.user_id, u.id)
        self.assertGreater(s.expires_at_ms, s.created_at_ms)
        self.assertEqual([x.session_id for x in self.app.auth.sessions(u.id)], [s.session_id])
        self.app.auth.logout(login.token)
        self.app.auth.logout(login.token)  # idempotent
        with self.assertRaises(lb.AuthError):
            self.app.auth.verify(login.token)
        self.assertEqual(self.app.auth.sessions(u.id), [])

    def test_end_session_revoke_all_purge(self):
        u = self.user()
        a = self.app.auth.login(u.email, PASSWORD).token
        b = self.app.auth.login(u.email, PASSWORD).token
        self.app.auth.end_session(u.id, self.app.auth.verify_session(a).session_id)
        with self.assertRaises(lb.AuthError):
            self.app.auth.verify(a)
        self.assertEqual(self.app.auth.verify(b), u.id)
        self.app.auth.revoke_all(u.id)
        with self.assertRaises(lb.AuthError):
            self.app.auth.verify(b)
        self.assertGreaterEqual(self.app.auth.purge_expired(), 2)

    def test_import_password_hash(self):
        # argon2-cffi's hash of "migrated pass phrase 2024" (the README's)
        phc = "$argon2id$v=19$m=64,t=1,p=4$BDA7brXddh+I4jFdj1tB1w$k0l5757etJKV6pfi4hnwsQ"
        u = self.user(password=None)
        self.app.auth.import_password_hash(u.id, phc)
        self.assertEqual(self.app.auth.login(u.email, "migrated pass phrase 2024").user_id, u.id)
        self.assertEqual(self.app.auth.login(u.email, "migrated pass phrase 2024").user_id, u.id)
        with self.assertRaises(lb.AuthError):
            self.app.auth.login(u.email, "another pass phrase")
        for bad in ("$2b$12$abcdefghijklmnopqrstuvwxyz", phc.replace("argon2id", "argon2i"),
                    phc + "\0"):
            with self.assertRaises(lb.ValidationError) as cm:
                self.app.auth.import_password_hash(u.id, bad)
            self.assertEqual(cm.exception.fields[0].field, "password_hash")

    def test_password_policy_and_change(self):
        u = self.user()
        with self.assertRaises(lb.ValidationError) as cm:
            self.app.auth.check_password("short")
        self.assertEqual(cm.exception.fields[0].field, "password")
        keep = self.app.auth.login(u.email, PASSWORD).token
        other = self.app.auth.login(u.email, PASSWORD).token
        with self.assertRaises(lb.AuthError):
            self.app.auth.change_password(u.id, "not the password", "another long passphrase")
        new = "another long passphrase"
        self.app.auth.change_password(u.id, PASSWORD, new, current_token=keep)
        self.assertEqual(self.app.auth.verify(keep), u.id)
        with self.assertRaises(lb.AuthError):
            self.app.auth.verify(other)
        self.assertEqual(self.app.auth.login(u.email, new).user_id, u.id)

    def test_reset_through_a_python_mailer(self):
        sent = []
        with fast_app(mailer=lambda to, subject, body: sent.append((to, subject, body))) as app:
            u = app.users.create("ada@example.com", "Ada")
            app.auth.set_password(u.id, PASSWORD)
            app.auth.request_reset("ada@example.com")
            app.auth.request_reset("nobody@example.com")  # same answer, nothing sent
            self.assertEqual([(to, s) for to, s, _ in sent],
                             [("ada@example.com", "Password reset")])
            token = sent[0][2].split("\n")[2]
            app.auth.reset_password(token, "a brand new passphrase")
            self.assertEqual(app.auth.login(u.email, "a brand new passphrase").user_id, u.id)
            with self.assertRaises(lb.AuthError):
                app.auth.reset_password(token, "yet another passphrase")

    def test_a_failing_mailer_does_not_fail_the_request(self):
        def broken(to, subject, body):
            raise RuntimeError("smtp down")
        with fast_app(mailer=broken) as app:
            app.users.create("ada@example.com", "Ada")
            app.auth.request_reset("ada@example.com")  # logged by the library, BE_OK

    def test_pepper_rotation(self):
        old, new = b"o" * 32, b"n" * 32
        with fast_app(database=os.path.join(self.tmp.name, "p.db"), pepper=old,
                      pepper_id=1) as app:
            u = app.users.create("p@example.com", "P")
            app.auth.set_password(u.id, PASSWORD)
        with fast_app(database=os.path.join(self.tmp.name, "p.db"), pepper=new, pepper_id=2,
                      previous_peppers=[(1, old)]) as app:
            self.assertEqual(app.auth.login("p@example.com", PASSWORD).user_id, u.id)
        with fast_app(database=os.path.join(self.tmp.name, "p.db"), pepper=new,
                      pepper_id=2) as app:  # rehashed under the new pepper at that login
            self.assertEqual(app.auth.login("p@example.com", PASSWORD).user_id, u.id)


class Permissions(AppTest):
    def test_roles_grants_checks(self):
        u = self.user(password=None)
        p = self.app.permissions
        rid = p.create_role("editor")
        self.assertGreater(rid, 0)
        epoch = p.epoch()
        p.grant("editor", "posts:*")
        p.grant("editor", "comments:read")
        p.assign(u.id, "editor")
        self.assertGreater(p.epoch(), epoch)
        p.check(u.id, "posts:write")
        self.assertTrue(p.allowed(u.id, "comments:read"))
        self.assertFalse(p.allowed(u.id, "comments:write"))
        self.assertEqual(p.user_roles(u.id), ["editor"])
        self.assertEqual(p.role_permissions("editor"), ["comments:read", "posts:*"])
        self.assertEqual(p.user_permissions(u.id), ["comments:read", "posts:*"])
        p.revoke("editor", "posts:*")
        self.assertFalse(p.allowed(u.id, "posts:write"))  # holds on the next check
        p.unassign(u.id, "editor")
        self.assertEqual(p.user_roles(u.id), [])
        p.delete_role("editor")
        with self.assertRaises(lb.NotFoundError):
            p.role_permissions("editor")
        with self.assertRaises(lb.ValidationError):
            p.check(u.id, "not a permission!")


class Audit(AppTest):
    def test_write_list_verify(self):
        u = self.user()
        rid = self.app.audit.write("post.publish", "post", 7, {"title": "hi"}, actor=u.id)
        rows = self.app.audit.list(limit=2)
        self.assertEqual(rows.items[0].id, rid)
        self.assertEqual((rows.items[0].action, rows.items[0].target_id, rows.items[0].details,
                          rows.items[0].actor_id), ("post.publish", 7, {"title": "hi"}, u.id))
        self.assertIsNotNone(rows.next_cursor)
        rest = self.app.audit.list(cursor=rows.next_cursor, limit=500)
        self.assertEqual([r.action for r in rest.items][-1], "user.create")
        self.assertIsNone(rest.next_cursor)
        mine = self.app.audit.list(user_id=u.id)
        self.assertTrue(all(r.actor_id == u.id or r.target_id == u.id for r in mine.items))
        check = self.app.audit.verify()
        self.assertEqual((check.ok, check.first_bad_id), (True, 0))
        self.assertEqual(check.rows, len(rows.items) + len(rest.items))
        head_id, head_hash = self.app.audit.head()
        self.assertEqual(head_id, rid)
        self.assertTrue(self.app.audit.verify_anchor(head_id, head_hash).ok)
        self.assertFalse(self.app.audit.verify_anchor(head_id, bytes(32)).ok)
        with self.assertRaises(TypeError):
            self.app.audit.verify_anchor(head_id, b"short")

    def test_refused_rows_are_not_written(self):
        before = self.app.audit.head()
        for action, target, details in (("user.create", "user", None),  # libbackend's own
                                        ("Bad Action", "post", None),
                                        ("post.edit", "post", "[1, 2]")):
            with self.assertRaises(lb.ValidationError):
                self.app.audit.write(action, target, 1, details)
        self.assertEqual(self.app.audit.head(), before)

    def test_keyed_chain(self):
        key = os.urandom(32)
        db = os.path.join(self.tmp.name, "keyed.db")
        with fast_app(database=db, audit_key=key) as app:
            app.audit.write("post.publish", "post", 1)
            self.assertTrue(app.audit.verify().ok)
        with self.assertRaises(lb.ValidationError):
            fast_app(database=db, audit_key=os.urandom(32)).close()


class Cache(AppTest):
    def test_get_set_delete(self):
        c = self.app.cache
        self.assertIsNone(c.get("k"))
        c.set("k", b"v\x00with nul")
        self.assertEqual(c.get("k"), b"v\x00with nul")
        c["text"] = "héllo"
        self.assertEqual(c["text"], "héllo".encode())
        self.assertIn("k", c)
        c.set(b"empty", b"")
        self.assertEqual(c.get(b"empty"), b"")
        self.assertTrue(c.delete("k"))
        self.assertFalse(c.delete("k"))
        with self.assertRaises(KeyError):
            c["k"]
        with self.assertRaises(KeyError):
            del c["k"]
        c.set("p:1", "1", ttl_ms=-1)
        c.set("p:2", "2", ttl_ms=60000)
        c.invalidate_prefix("p:")
        self.assertNotIn("p:1", c)
        with self.assertRaises(lb.ValidationError):
            c.set("k", "v", ttl_ms=-2)


class Status(AppTest):
    def test_statistics(self):
        u = self.user()
        self.app.users.get(u.id)
        self.assertGreater(self.app.pool_stats()["acquires"], 0)
        self.assertEqual(self.app.pool_stats()["in_use"], 0)
        self.assertGreaterEqual(self.app.cache_stats()["entries"], 1)
        self.assertGreater(self.app.query_stats()["queries"], 0)

    def test_status(self):
        st = self.app.status()
        self.assertEqual(st["library_version"], lb.library_version())
        self.assertIs(st["ok"], True)
        self.assertIs(st["database"]["reachable"], True)
        self.assertEqual(st["database"]["file"], self.db)
        self.assertEqual(st["pool"]["in_use"], 0)
        self.assertEqual({t["name"] for t in st["targets"]},
                         {"api_p95", "db_query_p95", "error_rate"})
        self.assertIn("PASS", self.app.status_text())

    def test_targets_are_options(self):
        with fast_app(target_api_p95_ms=1, target_db_p95_ms=7, target_error_rate=0.5) as app:
            targets = {t["name"]: t for t in app.status()["targets"]}
        self.assertEqual(targets["db_query_p95"]["target"], 7)
        self.assertEqual(targets["api_p95"]["target"], 1)
        self.assertEqual(targets["error_rate"]["target"], 50)  # in %
        refused_option(self, "target_error_rate", target_error_rate=2.0)
        with self.assertRaises(TypeError):
            fast_app(target_error_rate="0.1")

    def test_metrics(self):
        u = self.user()
        self.app.users.get(u.id)
        with self.assertRaises(lb.NotFoundError):
            self.app.users.get(u.id + 1)
        ops = {o["op"]: o for o in self.app.metrics()["operations"]}
        self.assertGreaterEqual(ops["user.get"]["calls"], 2)
        self.assertGreaterEqual(ops["user.get"]["errors"], 1)
        prom = self.app.metrics_prometheus()
        self.assertIn("# TYPE backend_", prom)
        self.assertIn('op="user.get"', prom)
        self.assertGreater(self.app.memory()["library_bytes"], 0)

    def test_metrics_off(self):
        with fast_app(disable_metrics=True) as app:
            app.users.create("m@example.com", "M")
            ops = app.metrics()["operations"]
        self.assertEqual([o for o in ops if o["calls"]], [])


class Lifetime(unittest.TestCase):
    def test_close_is_idempotent_and_final(self):
        app = fast_app()
        self.assertFalse(app.closed)
        app.close()
        app.close()
        self.assertTrue(app.closed)
        with self.assertRaises(lb.ClosedError):
            app.users.get(1)
        with self.assertRaises(lb.ClosedError):
            app.status()

    def test_with_block_closes(self):
        with fast_app() as app:
            pass
        self.assertTrue(app.closed)

    def test_dropped_app_is_freed_at_once(self):
        """No reference cycle: the last reference going frees the be_app,
        without waiting for the cycle collector."""
        gc.disable()
        try:
            app = fast_app()
            freed = []
            handle = app._handle
            handle._free = lambda ptr, free=handle._free: (freed.append(ptr.value), free(ptr))
            ptr = handle._ptr.value
            refs = weakref.ref(app), weakref.ref(handle)
            del app, handle
            self.assertEqual([r() for r in refs], [None, None])
            self.assertEqual(freed, [ptr])
        finally:
            gc.enable()

    def test_a_kept_service_keeps_the_app(self):
        users = fast_app().users
        self.assertEqual(users.create("kept@example.com", "Kept").email, "kept@example.com")

    def test_close_waits_for_calls_in_flight(self):
        started, release = threading.Event(), threading.Event()
        seen = []

        def slow(to, subject, body):  # runs inside a library call
            started.set()
            release.wait(10)

        app2 = fast_app(mailer=slow)
        u2 = app2.users.create("w@example.com", "W")
        t = threading.Thread(target=lambda: seen.append(app2.auth.request_reset(u2.email)))
        t.start()
        self.assertTrue(started.wait(10))
        closer = threading.Thread(target=app2.close)
        closer.start()
        closer.join(0.2)
        self.assertTrue(closer.is_alive(), "close() did not wait for the call in flight")
        release.set()
        t.join(10)
        closer.join(10)
        self.assertEqual(seen, [None])
        self.assertTrue(app2.closed)


if __name__ == "__main__":
    unittest.main()
