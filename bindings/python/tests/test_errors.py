# SPDX-License-Identifier: MIT
"""Errors: one exception class per category with the library's code, HTTP
status, field errors and problem JSON; bad Python arguments stop before C."""
import json
import os
import unittest

from support import PASSWORD, AppTest  # first: it finds the package
import libbackend as lb


class Categories(AppTest):
    def test_validation_names_every_field(self):
        with self.assertRaises(lb.ValidationError) as cm:
            self.app.users.create("not-an-email", "")
        e = cm.exception
        self.assertIsInstance(e, lb.BackendError)
        self.assertIsInstance(e, ValueError)
        self.assertEqual((e.code, e.code_name, e.http_status, e.retryable),
                         (-4, "BE_E_VALIDATION", 400, False))
        self.assertEqual([f.field for f in e.fields], ["email", "name"])
        self.assertIn("@", e.field("email"))
        self.assertIsNone(e.field("bio"))
        doc = json.loads(e.problem_json)
        self.assertEqual(doc, e.problem)
        self.assertEqual((doc["status"], doc["code_name"]), (400, "BE_E_VALIDATION"))
        self.assertEqual([x["field"] for x in doc["errors"]], ["email", "name"])
        self.assertIn("email", str(e))

    def test_not_found(self):
        with self.assertRaises(lb.NotFoundError) as cm:
            self.app.users.get(424242)
        e = cm.exception
        self.assertIsInstance(e, LookupError)
        self.assertEqual((e.code_name, e.http_status, e.problem["status"]),
                         ("BE_E_NOT_FOUND", 404, 404))
        with self.assertRaises(lb.NotFoundError):
            self.app.users.get_by_email("nobody@example.com")
        with self.assertRaises(lb.NotFoundError):
            self.app.users.delete(424242)
        with self.assertRaises(lb.NotFoundError):
            self.app.permissions.grant("no-such-role", "posts:read")

    def test_conflict_names_the_field(self):
        self.user(password=None)
        with self.assertRaises(lb.ConflictError) as cm:
            self.app.users.create("ADA@example.com", "Other Ada")
        e = cm.exception
        self.assertEqual((e.code_name, e.http_status), ("BE_E_CONFLICT", 409))
        self.assertEqual([f.field for f in e.fields], ["email"])
        self.app.permissions.create_role("editor")
        with self.assertRaises(lb.ConflictError):
            self.app.permissions.create_role("editor")

    def test_bad_login_is_one_401(self):
        u = self.user()
        for email, password in (("ada@example.com", "wrong password here"),
                                ("nobody@example.com", PASSWORD)):
            with self.assertRaises(lb.AuthError) as cm:
                self.app.auth.login(email, password)
            e = cm.exception
            self.assertEqual((e.code_name, e.http_status, e.retryable),
                             ("BE_E_UNAUTHORIZED", 401, False))
            self.assertEqual(e.problem["status"], 401)
        with self.assertRaises(lb.AuthError):
            self.app.auth.verify("x" * 43)
        self.assertEqual(self.app.auth.verify(self.app.auth.login(u.email, PASSWORD).token), u.id)

    def test_forbidden(self):
        u = self.user(password=None)
        with self.assertRaises(lb.ForbiddenError) as cm:
            self.app.permissions.check(u.id, "posts:write")
        self.assertEqual(cm.exception.http_status, 403)
        self.assertFalse(self.app.permissions.allowed(u.id, "posts:write"))

    def test_unsupported_without_a_mailer(self):
        with self.assertRaises(lb.UnsupportedError) as cm:
            self.app.auth.request_reset("ada@example.com")
        self.assertEqual(cm.exception.http_status, 501)

    def test_bad_options_are_validation_errors(self):
        with self.assertRaises(lb.ValidationError) as cm:
            lb.App(database=":memory:", pool_min=5, pool_max=2)
        self.assertTrue(cm.exception.fields)
        with self.assertRaises(lb.ValidationError) as cm:
            lb.App(database=":memory:", audit_key=b"short")
        self.assertTrue(cm.exception.fields[0].field.startswith("audit_key"))

    def test_failed_opens(self):
        """A file that is not a database: a permanent error naming it, the
        file untouched; a missing directory: named too."""
        path = os.path.join(self.tmp.name, "notes.txt")
        content = b"not a database, just text\n" * 200
        with open(path, "wb") as f:
            f.write(content)
        with self.assertRaises(lb.BackendError) as cm:
            lb.App(path)
        e = cm.exception
        self.assertFalse(e.retryable)
        self.assertEqual(e.http_status, 500)
        self.assertIn(path, e.message)
        self.assertIn(path, e.problem["detail"])
        with open(path, "rb") as f:
            self.assertEqual(f.read(), content)
        missing = os.path.join(self.tmp.name, "no", "such", "dir", "app.db")
        with self.assertRaises(lb.BackendError) as cm:
            lb.App(missing)
        self.assertIn(missing, cm.exception.message)
        self.assertFalse(os.path.exists(os.path.dirname(missing)))

    def test_errors_are_per_call(self):
        """Two failures keep their own details (nothing shared)."""
        errors = []
        for email in ("a", "b@"):
            try:
                self.app.users.create(email, "N")
            except lb.ValidationError as e:
                errors.append(e)
        self.assertEqual(len(errors), 2)
        self.assertNotEqual(errors[0].problem_json, errors[1].problem_json)


class Arguments(AppTest):
    """Wrong Python types fail with TypeError before reaching C; text the
    library refuses (NUL, invalid UTF-8) is a ValidationError naming it."""

    def test_wrong_types(self):
        users, auth, perms = self.app.users, self.app.auth, self.app.permissions
        for call in (lambda: users.create(None, "Ada"),
                     lambda: users.create("a@example.com", 42),
                     lambda: users.get("1"),
                     lambda: users.get(None),
                     lambda: users.get(1.0),
                     lambda: users.get(True),
                     lambda: users.get_many([1, "2"]),
                     lambda: auth.login("a@example.com", None),
                     lambda: auth.verify(None),
                     lambda: perms.check(1, ["posts:read"]),
                     lambda: self.app.cache.set("k", 3),
                     lambda: self.app.audit.write("x.y", "post", "7"),
                     lambda: lb.App(database=42),
                     lambda: lb.App(database=":memory:", pool_max="10"),
                     lambda: lb.App(database=":memory:", no_such_option=1),
                     lambda: lb.App(database=":memory:", audit_key="text, not bytes"),
                     lambda: lb.App(database=":memory:", mailer="not callable")):
            with self.assertRaises(TypeError):
                call()

    def test_out_of_range_integers(self):
        with self.assertRaises(OverflowError):
            self.app.users.get(2 ** 63)
        with self.assertRaises(OverflowError):
            lb.App(database=":memory:", pool_max=2 ** 31)
        with self.assertRaises(OverflowError):
            lb.App(database=":memory:", pwhash_opslimit=-1)

    def test_embedded_nul_is_refused_not_cut(self):
        with self.assertRaises(lb.ValidationError) as cm:
            self.app.users.create("ada@example.com\0.evil", "Ada")
        self.assertEqual(cm.exception.fields[0].field, "email")
        u = self.user()
        with self.assertRaises(lb.AuthError):  # cut at the NUL, it would log in
            self.app.auth.login(u.email, PASSWORD + "\0tail")
        with self.assertRaises(lb.ValidationError) as cm:
            self.app.users.update(u.id, name="Ada\0Lovelace")
        self.assertEqual(cm.exception.fields[0].field, "name")
        self.assertEqual(self.app.users.get(u.id).name, "Ada")

    def test_nul_in_a_nul_terminated_option(self):
        """be_app_options.database and table_prefix have no length: a NUL
        would cut them, so the binding refuses it as the library would."""
        for option in ("database", "table_prefix"):
            with self.assertRaises(lb.ValidationError) as cm:
                lb.App(**{"database": ":memory:", option: "abc\0def"})
            self.assertEqual(cm.exception.fields, [lb.FieldError(option,
                                                                 "must not contain a NUL byte")])
            self.assertEqual(cm.exception.problem["errors"][0]["field"], option)
            self.assertEqual(cm.exception.http_status, 400)

    def test_invalid_utf8_is_refused(self):
        with self.assertRaises(lb.ValidationError) as cm:
            self.app.users.create(b"ada\xff@example.com", "Ada")
        self.assertEqual(cm.exception.fields[0].field, "email")
        with self.assertRaises(lb.ValidationError) as cm:
            self.app.users.create("ada@example.com", "Ada \udc80")  # a lone surrogate
        self.assertEqual(cm.exception.fields[0].field, "name")
        with self.assertRaises(lb.ValidationError) as cm:
            self.app.permissions.create_role(b"\xc3\x28")
        self.assertEqual(cm.exception.fields[0].field, "role")

    def test_bytes_and_empty_strings(self):
        u = self.app.users.create(b"bytes@example.com", b"Bytes", bio="")
        self.assertEqual((u.email, u.bio), ("bytes@example.com", ""))
        with self.assertRaises(lb.ValidationError):
            self.app.users.create("", "Empty")

    def test_nothing_written_after_a_refusal(self):
        before = self.app.audit.verify().rows
        with self.assertRaises(lb.ValidationError):
            self.app.users.create("x@example.com", "X", extra="not json")
        self.assertEqual(self.app.audit.verify().rows, before)
        self.assertEqual(list(self.app.users), [])


if __name__ == "__main__":
    unittest.main()
