# SPDX-License-Identifier: MIT
"""Loading the library, the import-time ABI check, and forward
compatibility: a later 0.x library with larger, newer structs works."""
import ctypes as C
import ctypes.util
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest

from support import FUTURE, PASSWORD, REPO, fast_app  # first: it finds the package
import libbackend
from libbackend import _layouts as L
from libbackend import _native as N

PACKAGE = pathlib.Path(libbackend.__file__).resolve().parent


def python(code, cwd=None, **env):
    """Run code in a fresh interpreter; (exit status, stdout + stderr)."""
    full = dict(os.environ, **env)
    for k, v in env.items():
        if v is None:
            del full[k]
    p = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True,
                       timeout=60, cwd=cwd or tempfile.gettempdir())  # not this tree's package
    return p.returncode, p.stdout + p.stderr


class Loading(unittest.TestCase):
    def test_loaded_from_libbackend_path(self):
        self.assertEqual(libbackend.library_path(), os.environ["LIBBACKEND_PATH"])
        version = libbackend.library_version()
        self.assertRegex(version, r"^0\.\d+\.\d+")
        self.assertEqual(version == "0.99.0", FUTURE)

    def test_import_in_a_fresh_interpreter(self):
        rc, out = python("import libbackend; print(libbackend.library_version())")
        self.assertEqual(rc, 0, out)

    def test_libbackend_path_may_name_the_directory(self):
        if FUTURE:
            self.skipTest("the stand-in is not named libbackend.so.0")
        d = os.path.dirname(os.environ["LIBBACKEND_PATH"])
        rc, out = python("import libbackend; print(libbackend.library_path())",
                         LIBBACKEND_PATH=d)
        self.assertEqual((rc, out.strip()), (0, os.path.join(d, "libbackend.so.0")), out)

    def test_the_system_loader(self):
        """Without LIBBACKEND_PATH and with nothing next to the package,
        the system's loader finds libbackend.so.0 (here through
        LD_LIBRARY_PATH, as after `meson install` through ld.so.cache)."""
        if FUTURE:
            self.skipTest("the stand-in is not named libbackend.so.0")
        d = os.path.dirname(os.environ["LIBBACKEND_PATH"])
        rc, out = python("import libbackend; print(libbackend.library_path())",
                         LIBBACKEND_PATH=None, LD_LIBRARY_PATH=d)
        self.assertEqual((rc, out.strip()), (0, N.SONAME), out)

    def test_a_wrong_libbackend_path_is_an_import_error_naming_it(self):
        rc, out = python("import libbackend", LIBBACKEND_PATH="/nonexistent/libbackend.so.0")
        self.assertNotEqual(rc, 0)
        self.assertIn("ImportError", out)
        self.assertIn("/nonexistent/libbackend.so.0", out)

    def test_a_library_that_is_not_libbackend_is_refused(self):
        libc = ctypes.util.find_library("c")
        rc, out = python("import libbackend", LIBBACKEND_PATH=libc)
        self.assertNotEqual(rc, 0)
        self.assertIn("lacks be_", out)


class Installed(unittest.TestCase):
    """The package works as installed: from a copy of it elsewhere, with
    the library next to it (the second place it looks) or from pip."""

    def setUp(self):
        if FUTURE:
            self.skipTest("the stand-in is not named libbackend.so.0")
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def check_import(self, site, want_lib):
        code = ("import libbackend; print(libbackend.__file__);"
                "print(libbackend.library_path());"
                "app = libbackend.App(':memory:'); app.users.create('i@example.com', 'I');"
                "app.close()")
        rc, out = python(code, PYTHONPATH=site, LIBBACKEND_PATH=None)
        self.assertEqual(rc, 0, out)
        pkg, lib = out.split()[:2]
        self.assertTrue(pkg.startswith(site), out)
        self.assertEqual(lib, want_lib)

    def test_default_database_is_the_library_s(self):
        code = ("import libbackend, os; libbackend.App(pool_min=1).close();"
                "print(os.listdir('.'))")
        rc, out = python(code, cwd=self.tmp.name)
        self.assertEqual(rc, 0, out)
        self.assertIn("backend.db", out)

    def test_library_next_to_the_package(self):
        site = os.path.join(self.tmp.name, "site")
        shutil.copytree(PACKAGE, os.path.join(site, "libbackend"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(os.environ["LIBBACKEND_PATH"], os.path.join(site, "libbackend", N.SONAME))
        self.check_import(site, os.path.join(site, "libbackend", N.SONAME))

    def test_source_distribution(self):
        """The sdist that pyproject.toml describes builds (setuptools, no
        network) and holds a package that works."""
        src = os.path.join(self.tmp.name, "src")
        shutil.copytree(PACKAGE.parent, src,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        dist = os.path.join(self.tmp.name, "dist")
        code = f"from setuptools import build_meta; print(build_meta.build_sdist({dist!r}))"
        rc, out = python(code, cwd=src)
        self.assertEqual(rc, 0, out)
        self.assertEqual(os.listdir(dist), ["libbackend-0.1.0.tar.gz"], out)
        name = "libbackend-0.1.0.tar.gz"
        with tarfile.open(os.path.join(dist, name)) as tar:
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(self.tmp.name, **safe)
        site = os.path.join(self.tmp.name, "libbackend-0.1.0")
        shutil.copy(os.environ["LIBBACKEND_PATH"], os.path.join(site, "libbackend", N.SONAME))
        self.check_import(site, os.path.join(site, "libbackend", N.SONAME))

    def test_pip_install(self):
        if importlib.util.find_spec("wheel") is None:
            self.skipTest("pip needs the wheel package to install offline")
        site = os.path.join(self.tmp.name, "site")
        p = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation",
                            "--no-deps", "--no-index", "--target", site, str(PACKAGE.parent)],
                           capture_output=True, text=True, timeout=300)
        if "externally-managed-environment" in p.stderr:
            self.skipTest("this python refuses pip installs (PEP 668)")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        shutil.copy(os.environ["LIBBACKEND_PATH"], os.path.join(site, "libbackend", N.SONAME))
        self.check_import(site, os.path.join(site, "libbackend", N.SONAME))


class AbiCheck(unittest.TestCase):
    def test_every_function_used_is_declared(self):
        """Each be_* function the package calls has argtypes and restype."""
        used = set()
        for path in PACKAGE.glob("*.py"):
            used |= set(re.findall(r"\b_?lib\.(be_\w+)", path.read_text()))
        inits = {init for _, init in L.VERSIONS.values()}
        self.assertTrue(used, "found no calls")
        self.assertEqual(sorted((used | inits) - set(N.SIGNATURES)), [])
        n = libbackend._native_instance()
        for name, (restype, _) in N.SIGNATURES.items():
            f = getattr(n.lib, name)
            self.assertIsNotNone(f.argtypes, name)
            self.assertEqual(f.restype, restype, name)

    def test_struct_sizes_at_least_the_binding_s(self):
        n = libbackend._native_instance()
        for layout, (size, version) in n.structs.items():
            self.assertGreaterEqual(size, C.sizeof(layout), layout.__name__)
            self.assertGreaterEqual(version, L.VERSIONS[layout][0], layout.__name__)

    def test_a_smaller_or_older_struct_is_refused(self):
        size = C.sizeof(L.BeAppOptions)
        N.check_struct(L.BeAppOptions, size, 1)
        N.check_struct(L.BeAppOptions, size + 64, 7)  # later: fine
        with self.assertRaisesRegex(ImportError, "be_app_options is %d bytes" % (size - 8)):
            N.check_struct(L.BeAppOptions, size - 8, 1)
        with self.assertRaisesRegex(ImportError, "version 0"):
            N.check_struct(L.BeAppOptions, size, 0)

    def test_version_check(self):
        N.check_version(0x000100)
        N.check_version(0x003F07)
        for bad in (0x000009, 0x010000, 0x020100):
            with self.assertRaises(ImportError):
                N.check_version(bad)

    def test_constants_come_from_the_library(self):
        n = libbackend._native_instance()
        self.assertEqual(n.K["BE_AUTH_TOKEN_LEN"], n.constant("BE_AUTH_TOKEN_LEN"))
        self.assertEqual(n.nul_terminated, 2 ** (8 * C.sizeof(C.c_size_t)) - 1)
        with self.assertRaisesRegex(ImportError, "BE_NO_SUCH"):
            n.constant("BE_NO_SUCH")

    def test_layouts_are_prefixes_of_the_checked_ones(self):
        """Each layout here is a prefix (names, types, offsets) of the one in
        tests/ffi/ctypes_layouts.py, which the C compiler checks."""
        path = REPO / "tests" / "ffi" / "ctypes_layouts.py"
        if not path.exists():
            self.skipTest("not in the libbackend source tree")
        spec = importlib.util.spec_from_file_location("ctypes_layouts", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        full = {lay.__name__: lay for lay in mod.LAYOUTS}
        for layout in L.VERSIONS:
            ref = full[layout.__name__]
            self.assertLessEqual(len(layout._fields_), len(ref._fields_), layout.__name__)
            for (name, typ), (rname, rtyp) in zip(layout._fields_, ref._fields_):
                where = f"{layout.__name__}.{name}"
                self.assertEqual(name, rname, where)
                self.assertEqual(getattr(layout, name).offset, getattr(ref, rname).offset, where)
                self.assertEqual(C.sizeof(typ), C.sizeof(rtyp), where)


class ForwardCompatibility(unittest.TestCase):
    """A later library reports larger, newer structs: the binding allocates
    the library's size, lets it fill the tail, and works unchanged."""

    def test_a_larger_reported_size_still_works(self):
        n = libbackend._native_instance()
        saved = dict(n.structs)
        try:
            for layout, (size, version) in saved.items():
                n.structs[layout] = (size + 256, version)
            s = N.Struct(n, L.BeAppOptions)
            self.assertEqual(C.sizeof(s.buf), saved[L.BeAppOptions][0] + 256)
            with fast_app() as app:
                u = app.users.create("grow@example.com", "Grow")
                app.auth.set_password(u.id, PASSWORD)
                token = app.auth.login("grow@example.com", PASSWORD).token
                self.assertEqual(app.auth.verify_session(token).user_id, u.id)
                self.assertEqual(app.audit.list(limit=1).items[0].action, "auth.login")
                self.assertGreaterEqual(app.pool_stats()["acquires"], 1)
                self.assertEqual(app.status()["library_version"], libbackend.library_version())
        finally:
            n.structs.clear()
            n.structs.update(saved)

    def test_against_a_later_release(self):
        """Under LIBBACKEND_TEST_FUTURE the library is future_lib.c: its
        be_app_options and be_user_input are one version newer and larger,
        and its constructors fail unless the tail keeps its default."""
        if not FUTURE:
            self.skipTest("run by meson test python-future")
        n = libbackend._native_instance()
        for layout in (L.BeAppOptions, L.BeUserInput):
            size, version = n.structs[layout]
            # this release's struct (itself perhaps grown) and 16 bytes more
            self.assertGreaterEqual(size, C.sizeof(layout) + 16)
            self.assertGreater(version, L.VERSIONS[layout][0])
        with fast_app() as app:
            u = app.users.create("future@example.com", "Future")
            self.assertEqual(app.users.update(u.id, name="Later").name, "Later")

    def test_the_options_buffer_is_the_library_s_size_and_keeps_its_tail(self):
        n = libbackend._native_instance()
        size, version = n.structs[L.BeAppOptions]
        s = N.Struct(n, L.BeAppOptions)
        self.assertEqual(C.sizeof(s.buf), max(size, C.sizeof(L.BeAppOptions)))
        self.assertEqual(s.view.version, version)


if __name__ == "__main__":
    unittest.main()
