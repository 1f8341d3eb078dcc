# SPDX-License-Identifier: MIT
"""What the binding's tests share: an App with cheap password hashing."""
import os
import pathlib
import sys
import tempfile
import unittest

# This tree's package, also for the interpreters the tests start.
PACKAGE_ROOT = str(pathlib.Path(__file__).resolve().parents[1])
if PACKAGE_ROOT not in sys.path:
    sys.path.insert(0, PACKAGE_ROOT)
if PACKAGE_ROOT not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)

# The tests start interpreters in other directories: the library's path
# must not depend on this one.
if os.sep in os.environ.get("LIBBACKEND_PATH", ""):
    os.environ["LIBBACKEND_PATH"] = os.path.abspath(os.environ["LIBBACKEND_PATH"])

import libbackend  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[3]
PASSWORD = "a long correct passphrase"
# argon2id at the lowest cost the library takes with insecure_test_hashing:
# a login costs well under a millisecond.
FAST = dict(insecure_test_hashing=True, pwhash_opslimit=1, pwhash_memlimit=8192)
FUTURE = os.environ.get("LIBBACKEND_TEST_FUTURE") == "1"


def refused_option(test, field, **options):
    """Assert fast_app(**options) raises a ValidationError whose first field
    error names `field`; returns the error."""
    with test.assertRaises(libbackend.ValidationError) as cm:
        fast_app(**options).close()
    test.assertEqual(cm.exception.fields[0].field, field)
    return cm.exception


def fast_app(**options):
    """An in-memory App with cheap hashing (options override)."""
    return libbackend.App(**{"database": ":memory:", **FAST, **options})


class AppTest(unittest.TestCase):
    """A fresh App on a real SQLite file in a temporary directory."""

    app_options = {}

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.db = os.path.join(self.tmp.name, "app.db")
        self.app = fast_app(database=self.db, **self.app_options)

    def tearDown(self):
        self.app.close()
        self.tmp.cleanup()

    def user(self, email="ada@example.com", name="Ada", password=PASSWORD):
        u = self.app.users.create(email, name)
        if password is not None:
            self.app.auth.set_password(u.id, password)
        return u
