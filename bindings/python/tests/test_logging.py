# SPDX-License-Identifier: MIT
"""The library's log events reach Python's logging, secrets redacted."""
import logging
import unittest

from support import AppTest, fast_app  # first: it finds the package
import libbackend as lb


class Logging(AppTest):
    def tearDown(self):
        lb.log_to_stderr()
        super().tearDown()

    def test_events_reach_the_logger_with_fields(self):
        def broken(to, subject, body):
            raise RuntimeError("smtp down")

        lb.log_to_python("libbackend.test", logging.INFO)
        with self.assertLogs("libbackend.test", logging.ERROR) as cm:
            with fast_app(mailer=broken) as app:
                u = app.users.create("ada@example.com", "Ada")
                app.auth.request_reset("ada@example.com")
        record = cm.records[-1]
        self.assertEqual(record.levelno, logging.ERROR)
        self.assertIn("mailer", record.getMessage())
        self.assertEqual(record.be_fields["user_id"], str(u.id))
        self.assertEqual(record.be_fields["code"], "BE_E_UNAVAILABLE")

    def test_level_filters_and_restore(self):
        logger = logging.getLogger("libbackend.quiet")
        lb.log_to_python(logger, logging.CRITICAL)  # above ERROR: nothing is delivered
        with self.assertRaises(AssertionError):  # assertLogs fails when nothing was logged
            with self.assertLogs(logger, logging.DEBUG):
                with fast_app(mailer=lambda *a: 1 / 0) as app:
                    app.users.create("b@example.com", "B")
                    app.auth.request_reset("b@example.com")
        lb.log_to_stderr()
        with self.assertRaises(lb.InternalError) as cm:  # not a level: BE_E_MISUSE
            n = lb._native_instance()
            n.call(n.lib.be_log_set_handler, lb._layouts.LOG_FN(), None, 7)
        self.assertEqual(cm.exception.code_name, "BE_E_MISUSE")


if __name__ == "__main__":
    unittest.main()
