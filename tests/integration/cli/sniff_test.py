"""`veer sniff` on the vectors of testdata/sniff (expected results from its manifest.json)."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import cli_common as c  # noqa: E402


class SniffTest(c.CliTest):
    def setUp(self):
        self.td = c.require_testdata(self)
        self.base = os.path.join(self.td, "sniff")
        self.vectors = c.load_json(os.path.join(self.base, "manifest.json"))["vectors"]
        self.dir = c.tmpdir("sniff")

    def sniff(self, v, *extra):
        args = ["sniff", "--hex", "--json"] + list(extra)
        if v["transport"] == "udp":
            args.append("--udp")
        r = c.veer(*args, os.path.join(self.base, v["file"]))
        self.assertIn(r.returncode, (0, 1), r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(r.returncode, 0 if doc["result"] == "match" else 1)
        return doc

    def test_recognised_vectors(self):
        ok = [v for v in self.vectors
              if v["expect"]["result"] == "ok" and "acceptable" not in v["expect"]]
        self.assertGreater(len(ok), 50)
        self.assertTrue(any(v["chunks"] > 1 and v["protocol"] == "quic" for v in ok))
        for v in ok:
            with self.subTest(id=v["id"]):
                doc = self.sniff(v)
                want = v["expect"]
                self.assertEqual(doc["result"], "match")
                self.assertEqual(doc["protocol"], want.get("protocol", v["protocol"]))
                if want.get("domain"):
                    self.assertEqual(doc["domain"], want["domain"])
                if "client" in want:
                    self.assertEqual(doc["client"], want["client"] or None)
                alpn = v.get("derived", {}).get("alpn")
                if alpn is not None:
                    self.assertEqual(doc["alpn"], alpn)
                self.assertEqual(doc["chunks"], v["chunks"])

    def test_multi_datagram_quic_needs_every_datagram(self):
        multi = [v for v in self.vectors if v["protocol"] == "quic" and v["chunks"] > 1
                 and v["expect"].get("need_more_data_before_last")]
        self.assertTrue(multi)
        for v in multi:
            with self.subTest(id=v["id"]):
                with open(os.path.join(self.base, v["file"])) as f:
                    lines = f.read().splitlines()
                # All but the last datagram: QUIC is seen, the name is not known yet.
                part = c.write(self.dir, "part.hex", "\n".join(lines[:-1]) + "\n")
                r = c.veer("sniff", "--udp", "--hex", "--json", part)
                self.assertEqual(r.returncode, 1)
                doc = json.loads(r.stdout)
                self.assertEqual(doc["result"], "need_more")
                self.assertEqual(doc["protocol"], "quic")
                self.assertIsNone(doc["domain"])
                doc = self.sniff(v)
                self.assertEqual((doc["result"], doc["domain"]), ("match", v["expect"]["domain"]))

    def test_negative_vectors(self):
        neg = [v for v in self.vectors if v["expect"]["result"] == "error"]
        self.assertGreater(len(neg), 5)
        for v in neg:
            with self.subTest(id=v["id"]):
                doc = self.sniff(v)
                # Not this protocol (the dispatcher may recognise another one: a DNS packet in
                # quic-negative is DNS), and never "send more".
                self.assertNotEqual(doc["result"], "need_more")
                self.assertFalse(doc["result"] == "match" and doc["protocol"] == v["protocol"])

    def test_need_more_tcp_vectors(self):
        more = [v for v in self.vectors
                if v["expect"]["result"] == "need_more_data" and v["transport"] == "tcp"]
        self.assertTrue(more)
        for v in more:
            with self.subTest(id=v["id"]):
                self.assertEqual(self.sniff(v)["result"], "need_more")

    def test_raw_bytes_file_and_stdin_and_human_output(self):
        v = next(x for x in self.vectors if x["id"].startswith("tls/") and x["chunks"] == 1
                 and x["expect"]["result"] == "ok" and x["expect"].get("domain"))
        with open(os.path.join(self.base, v["file"])) as f:
            raw = bytes.fromhex(f.read().strip())
        p = os.path.join(self.dir, "hello.bin")
        with open(p, "wb") as f:
            f.write(raw)
        r = self.run_ok("sniff", p)
        self.assertIn("protocol: tls\n", r.stdout)
        self.assertIn("domain:   %s\n" % v["expect"]["domain"], r.stdout)
        import subprocess
        r = subprocess.run([c.VEER, "sniff", "--json", "-"], input=raw, capture_output=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["domain"], v["expect"]["domain"])
        # The same bytes as one datagram are not a UDP protocol.
        r = c.veer("sniff", "--udp", p)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not recognised", r.stdout)
        # Split into one-byte reads, the stream sniffer asks for more until the hello is whole.
        hexlines = c.write(self.dir, "bytes.hex", "\n".join(raw[i:i + 1].hex()
                                                            for i in range(len(raw))) + "\n")
        doc = json.loads(self.run_ok("sniff", "--hex", "--json", hexlines).stdout)
        self.assertEqual(doc["domain"], v["expect"]["domain"])
        self.assertEqual(doc["chunks"], len(raw))

    def test_errors_and_usage(self):
        bad = c.write(self.dir, "bad.hex", "16030\nzz\n")
        r = c.veer("sniff", "--hex", bad)
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad.hex:1:", r.stderr)
        self.assertEqual(c.veer("sniff", os.path.join(self.dir, "missing")).returncode, 1)
        for args in (["sniff"], ["sniff", "--bogus", bad], ["sniff", bad, bad]):
            r = c.veer(*args)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("Usage: veer sniff", r.stderr)
        self.assertEqual(c.veer("sniff", "--help").returncode, 0)


if __name__ == "__main__":
    unittest.main()
