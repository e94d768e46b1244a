"""Shared helpers for the CLI tests: the veer binary, the shared testdata, running commands."""
import json
import os
import subprocess
import tempfile
import unittest

VEER = os.environ.get("VEER_BIN", "build/veer")
SOURCE = os.environ.get("VEER_SOURCE_DIR",
                        os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))


def testdata_dir():
    """../shared/testdata beside the clone, or $VEER_TESTDATA; None when absent."""
    d = os.environ.get("VEER_TESTDATA") or os.path.join(SOURCE, "..", "shared", "testdata")
    return os.path.abspath(d) if os.path.isdir(d) else None


def require_testdata(test):
    """The testdata directory, or skips `test` with a message saying where it was looked for."""
    d = testdata_dir()
    if d is None:
        test.skipTest("shared testdata not found: set VEER_TESTDATA or put it at "
                      + os.path.join(SOURCE, "..", "shared", "testdata"))
    return d


def veer(*args, cwd=None, stdin=None, text=True):
    return subprocess.run([VEER] + [str(a) for a in args], capture_output=True, text=text,
                          timeout=300, cwd=cwd, input=stdin)


def tmpdir(prefix):
    return tempfile.mkdtemp(prefix="veer-cli-" + prefix + "-")


def write(dirname, name, text):
    p = os.path.join(dirname, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def load_json(path):
    with open(path) as f:
        return json.load(f)


class CliTest(unittest.TestCase):
    def run_ok(self, *args, cwd=None, stdin=None):
        r = veer(*args, cwd=cwd, stdin=stdin)
        self.assertEqual(r.returncode, 0, "veer %s\nstdout:\n%s\nstderr:\n%s"
                         % (" ".join(map(str, args)), r.stdout, r.stderr))
        return r
