"""A slow reader must not make veer buffer: 512 MiB pushed by a fast server at a client that
reads 1 MiB/s for 3 s, then drains. veer's RSS stays flat (backpressure stops reads from the
server), with splice(2) and with the buffered copy, and every byte arrives."""
import hashlib
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

TOTAL = 512 << 20
CHUNK = 1 << 20


class Pusher:
    """Accepts one connection and sends TOTAL bytes of a fixed pattern, then closes."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.digest = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        c, _ = self.srv.accept()
        block = bytes(range(256)) * (CHUNK // 256)
        md = hashlib.sha256()
        with c:
            for _ in range(TOTAL // CHUNK):
                c.sendall(block)
                md.update(block)
        self.digest = md.hexdigest()
        self.srv.close()


class SlowReaderTest(unittest.TestCase):
    def run_case(self, splice):
        v = h.Veer(h.base_config(), env={"VEER_SPLICE": "1" if splice else "0"})
        try:
            p = Pusher()
            s, code = h.socks5_connect(v.ports["mixed-in"], "127.0.0.1", p.port, timeout=30)
            self.assertEqual(code, 0)
            time.sleep(0.2)
            base = v.rss_kib()
            peak = base
            md = hashlib.sha256()
            got = 0
            # Slow phase: 1 MiB/s for 3 s, sampling veer's RSS.
            s.settimeout(30)
            t_end = time.time() + 3
            while time.time() < t_end:
                want = 1 << 17
                while want > 0:
                    d = s.recv(want)
                    if not d:
                        break
                    md.update(d)
                    got += len(d)
                    want -= len(d)
                peak = max(peak, v.rss_kib())
                time.sleep(0.125)
            # Drain phase (bounded by the socket timeout).
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                md.update(d)
                got += len(d)
                if got % (64 << 20) < (1 << 20):
                    peak = max(peak, v.rss_kib())
            s.close()
            # The pusher records its digest after closing its socket, so the client can see
            # EOF first: wait for the thread before comparing.
            p.thread.join(timeout=30)
            self.assertEqual(got, TOTAL)
            self.assertEqual(md.hexdigest(), p.digest)
            # Flat: a few hundred KiB of pool buffers at most, never the megabytes queued.
            print("\n%s: veer RSS %d KiB before, peak %d KiB while 512 MiB passed a slow reader"
                  % ("splice" if splice else "buffered", base, peak), file=sys.stderr)
            self.assertLess(peak - base, 2048, "RSS grew from %d to %d KiB" % (base, peak))
            return base, peak
        finally:
            self.assertEqual(v.stop(), 0)

    def test_splice(self):
        self.run_case(True)

    def test_buffered(self):
        self.run_case(False)


if __name__ == "__main__":
    unittest.main(verbosity=2)
