"""`veer check` golden corpus: every tests/data/check/<case>/ holds a config.json (and the DSL or
rule-set files it references) and expected.txt, the exact stdout of `veer check -c config.json`
run in that directory (so printed paths are relative to it)."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import cli_common as c  # noqa: E402

CASES = os.path.join(c.SOURCE, "tests", "data", "check")


def cases():
    return sorted(d for d in os.listdir(CASES) if os.path.isfile(os.path.join(CASES, d, "config.json")))


class CheckGoldenTest(unittest.TestCase):
    def test_corpus_is_there(self):
        self.assertGreaterEqual(len(cases()), 10)
        for name in cases():
            self.assertTrue(os.path.isfile(os.path.join(CASES, name, "expected.txt")), name)

    def test_check_output_matches_expected(self):
        for name in cases():
            d = os.path.join(CASES, name)
            with self.subTest(case=name):
                with open(os.path.join(d, "expected.txt")) as f:
                    expected = f.read()
                r = c.veer("check", "-c", "config.json", cwd=d)
                self.assertEqual(r.stdout, expected)
                # The exit status follows from the summary line: 1 with errors, else 0.
                m = re.search(r"^(\d+) error\(s\), (\d+) warning\(s\)$", expected, re.M)
                errors = int(m[1]) if m else 0
                warnings = int(m[2]) if m else 0
                self.assertEqual(r.returncode, 1 if errors else 0, r.stderr)
                if m:
                    self.assertEqual(expected.count(": warning: ") + expected.count("\nwarning: "),
                                     warnings)
                strict = c.veer("check", "-c", "config.json", "--strict", cwd=d)
                self.assertEqual(strict.returncode, 1 if errors or warnings else 0)

    def test_json_output_has_the_same_diagnostics(self):
        import json
        for name in cases():
            d = os.path.join(CASES, name)
            with self.subTest(case=name):
                with open(os.path.join(d, "expected.txt")) as f:
                    expected = f.read()
                r = c.veer("check", "-c", "config.json", "--json", cwd=d)
                diags = json.loads(r.stdout)
                # Each positioned diagnostic of the text form appears with its file:line:col.
                heads = re.findall(r"^([^\s:][^:]*):(\d+):(\d+): (?:warning: )?", expected, re.M)
                self.assertEqual(
                    sorted((h[0], int(h[1]), int(h[2])) for h in heads),
                    sorted((x["file"], x["line"], x["column"]) for x in diags if x["line"]))


if __name__ == "__main__":
    unittest.main()
