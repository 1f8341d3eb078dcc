# SPDX-License-Identifier: MIT
"""One App shared by threads: logins, verifies and reads at once, each
failure with its own error."""
import ctypes
import threading
import unittest

from support import PASSWORD, AppTest  # first: it finds the package
import libbackend as lb

THREADS = 8
ROUNDS = 25


class Threads(AppTest):
    app_options = {"max_concurrent_hashes": 4, "pool_max": 16}  # no usage alert at 8 threads

    def test_concurrent_logins_gets_and_failures(self):
        users = [self.user(f"t{i}@example.com", f"T{i}") for i in range(THREADS)]
        problems = []
        barrier = threading.Barrier(THREADS)

        def worker(i):
            me = users[i]
            try:
                barrier.wait()
                for r in range(ROUNDS):
                    login = self.app.auth.login(me.email, PASSWORD)
                    if login.user_id != me.id or self.app.auth.verify(login.token) != me.id:
                        problems.append((i, r, "login"))
                    if self.app.users.get(users[(i + r) % THREADS].id).id != \
                            users[(i + r) % THREADS].id:
                        problems.append((i, r, "get"))
                    try:
                        self.app.users.create(f"t{(i + 1) % THREADS}@example.com", f"X{i}")
                        problems.append((i, r, "no conflict"))
                    except lb.ConflictError as e:
                        if e.fields[0].field != "email" or e.http_status != 409:
                            problems.append((i, r, "conflict details", e))
                    try:
                        self.app.users.get(10_000 + i)
                        problems.append((i, r, "no 404"))
                    except lb.NotFoundError as e:
                        if e.code_name != "BE_E_NOT_FOUND":
                            problems.append((i, r, "404 details", e))
                    self.app.auth.logout(login.token)
            except Exception as e:  # noqa: BLE001 - report, do not lose it
                problems.append((i, "raised", repr(e)))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(problems, [])
        self.assertEqual(self.app.audit.verify().first_bad_id, 0)
        logins = [r for r in self.app.audit.list(limit=500).items if r.action == "auth.login"]
        self.assertGreaterEqual(len(logins), min(500 // 2, THREADS * ROUNDS) // 2)

    def test_close_while_threads_call(self):
        """Closing under load: each call either completes or raises
        ClosedError; none runs on a freed app."""
        u = self.user(password=None)
        outcomes, started = [], threading.Barrier(THREADS + 1)

        def reader():
            started.wait()
            n = 0
            try:
                while True:
                    self.app.users.get(u.id)
                    self.app.cache.set("k", "v")
                    n += 1
            except lb.ClosedError:
                outcomes.append(("closed", n))
            except Exception as e:  # noqa: BLE001 - report, do not lose it
                outcomes.append(("raised", repr(e)))

        threads = [threading.Thread(target=reader) for _ in range(THREADS)]
        for t in threads:
            t.start()
        started.wait()
        threading.Event().wait(0.05)
        self.app.close()
        for t in threads:
            t.join(30)
        self.assertEqual([o[0] for o in outcomes], ["closed"] * THREADS, outcomes)
        self.assertGreater(sum(o[1] for o in outcomes), 0)

    def test_foreign_calls_release_the_gil(self):
        """The library is a ctypes.CDLL, whose calls release the GIL (a
        PyDLL's would hold it)."""
        lib = lb._native_instance().lib
        self.assertIsInstance(lib, ctypes.CDLL)
        self.assertNotIsInstance(lib, ctypes.PyDLL)
        self.assertFalse(lib._func_flags_ & ctypes._FUNCFLAG_PYTHONAPI)

    def test_two_threads_log_in_at_once(self):
        a, b = self.user("a@example.com", "A"), self.user("b@example.com", "B")
        inside = []
        lock = threading.Lock()
        gate = threading.Barrier(2)

        def go(u):
            gate.wait()
            for _ in range(20):
                self.app.auth.login(u.email, PASSWORD)
            with lock:
                inside.append(u.id)

        ts = [threading.Thread(target=go, args=(u,)) for u in (a, b)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(sorted(inside), sorted([a.id, b.id]))


if __name__ == "__main__":
    unittest.main()
