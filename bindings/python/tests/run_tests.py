#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run the binding's tests with pytest when it is installed, else with
unittest (the tests are unittest.TestCase classes, so both work). The
package is imported from this source tree; LIBBACKEND_PATH names the
library (meson test sets it to the built one).

usage: LIBBACKEND_PATH=build/lib/libbackend.so.0 python3 run_tests.py [-v]
"""
import pathlib
import sys
import unittest

HERE = pathlib.Path(__file__).resolve().parent


def main():
    sys.path.insert(0, str(HERE))  # support.py puts the package on the path
    try:
        import pytest
    except ImportError:
        pytest = None
    if pytest is not None:
        sys.exit(pytest.main([str(HERE), "-q", "-p", "no:cacheprovider"] + sys.argv[1:]))
    suite = unittest.defaultTestLoader.discover(str(HERE), pattern="test_*.py",
                                                top_level_dir=str(HERE))
    verbosity = 2 if "-v" in sys.argv[1:] else 1
    result = unittest.TextTestRunner(verbosity=verbosity).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
