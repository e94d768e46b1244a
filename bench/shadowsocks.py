#!/usr/bin/env python3
"""Shadowsocks client benchmark: veer's shadowsocks outbound beside shadowsocks-libev's ss-local
doing the same job, per AEAD method:

    bulk client --SOCKS5--> veer (mixed -> shadowsocks)  --> ss-server --> sink / source
    bulk client --SOCKS5--> ss-local                     --> ss-server --> sink / source

Upload: the client sends SIZE bytes (length-prefixed), the sink answers with the count. Download: the
source sends SIZE bytes and closes. Throughput is SIZE over the time from the SOCKS reply to the
last byte (median of RUNS); CPU is user+system seconds per GiB of the client-side proxy (veer or
ss-local) and, separately, of the shared ss-server. The sink/source run in a child process so that
the client's own work does not share a GIL with them. Every process is started here and killed by
PID. Standalone:  python3 bench/shadowsocks.py [--size-mib 512] [--runs 3] [--veer build/veer]
bench/proxy_outbounds.py reuses this file's client and sink/source (and its --serve entry) to add
v2ray and the trojan outbound beside it.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"
CLK = os.sysconf("SC_CLK_TCK")
PASSWORD = "veer-bench"
METHODS = ["aes-128-gcm", "chacha20-ietf-poly1305"]
STARTED = []


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def spawn(argv, log):
    p = subprocess.Popen(argv, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    STARTED.append(p)
    return p


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime + stime


# ---------------------------------------------------------------- sink/source (child process)

def serve(sink_port, source_port):
    """Sink: reads an 8-byte size and that many bytes, answers the count (8 bytes). Source:
    reads an 8-byte size, sends that many bytes, closes. One connection at a time is enough here."""
    import selectors
    import threading

    def sink():
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((HOST, sink_port))
        srv.listen(8)
        buf = bytearray(1 << 20)
        while True:
            c, _ = srv.accept()
            want = b""
            while len(want) < 8:
                d = c.recv(8 - len(want))
                if not d:
                    break
                want += d
            left = struct.unpack(">Q", want)[0] if len(want) == 8 else 0
            n = 0
            while n < left:
                k = c.recv_into(buf)
                if not k:
                    break
                n += k
            c.sendall(struct.pack(">Q", n))
            c.close()

    def source():
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((HOST, source_port))
        srv.listen(8)
        block = os.urandom(1 << 20)
        while True:
            c, _ = srv.accept()
            want = b""
            while len(want) < 8:
                d = c.recv(8 - len(want))
                if not d:
                    break
                want += d
            if len(want) < 8:
                c.close()
                continue
            left = struct.unpack(">Q", want)[0]
            mv = memoryview(block)
            while left > 0:
                k = min(left, len(block))
                c.sendall(mv[:k])
                left -= k
            c.close()

    threading.Thread(target=sink, daemon=True).start()
    threading.Thread(target=source, daemon=True).start()
    signal.sigwait([signal.SIGTERM, signal.SIGINT])


# ---------------------------------------------------------------- the client

def socks_connect(port, dst_port):
    s = socket.create_connection((HOST, port), timeout=60)
    s.sendall(b"\x05\x01\x00")
    if s.recv(2) != b"\x05\x00":
        raise RuntimeError("SOCKS5 method refused")
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(HOST) + struct.pack(">H", dst_port))
    rep = b""
    while len(rep) < 10:
        d = s.recv(10 - len(rep))
        if not d:
            raise RuntimeError("SOCKS5 connection closed")
        rep += d
    if rep[1] != 0:
        raise RuntimeError("SOCKS5 reply %d" % rep[1])
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return s


def upload(port, sink_port, size):
    s = socks_connect(port, sink_port)
    block = memoryview(os.urandom(1 << 20))
    t0 = time.perf_counter()
    # Length-prefixed, no half-close: ss-server closes both ways on the client's FIN.
    s.sendall(struct.pack(">Q", size))
    left = size
    while left > 0:
        k = min(left, len(block))
        s.sendall(block[:k])
        left -= k
    ack = b""
    while len(ack) < 8:
        d = s.recv(8 - len(ack))
        if not d:
            break
        ack += d
    dt = time.perf_counter() - t0
    s.close()
    got = struct.unpack(">Q", ack)[0] if len(ack) == 8 else -1
    if got != size:
        raise RuntimeError("upload: the sink got %d of %d bytes" % (got, size))
    return dt


def download(port, source_port, size):
    s = socks_connect(port, source_port)
    s.sendall(struct.pack(">Q", size))
    buf = bytearray(1 << 20)
    t0 = time.perf_counter()
    n = 0
    while True:
        k = s.recv_into(buf)
        if not k:
            break
        n += k
    dt = time.perf_counter() - t0
    s.close()
    if n != size:
        raise RuntimeError("download: got %d of %d bytes" % (n, size))
    return dt


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
        return 0
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--veer", default=os.environ.get("VEER_BIN", os.path.join(root, "build", "veer")))
    ap.add_argument("--methods", default=",".join(METHODS))
    a = ap.parse_args()
    for tool in ("ss-server", "ss-local"):
        if not shutil.which(tool):
            print("skipped: %s not installed (apt-get install shadowsocks-libev)" % tool)
            return 0
    if not os.access(a.veer, os.X_OK):
        print("veer binary not found at %s (build it, or pass --veer)" % a.veer, file=sys.stderr)
        return 1
    size = a.size_mib << 20
    gib = size / float(1 << 30)
    tmp = tempfile.mkdtemp(prefix="veer-ssbench-")
    sink_port, source_port = free_port(), free_port()
    srv = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", str(sink_port),
                            str(source_port)])
    STARTED.append(srv)
    rows = []
    try:
        if not wait_port(sink_port, srv) or not wait_port(source_port, srv):
            raise RuntimeError("sink/source did not start")
        for method in a.methods.split(","):
            ss_port, veer_port, local_port = free_port(), free_port(), free_port()
            common = ["-k", PASSWORD, "-m", method]
            server = spawn(["ss-server", "-s", HOST, "-p", str(ss_port)] + common,
                           os.path.join(tmp, "ss-server-%s.log" % method))
            cfg = {"log": {"level": "warn"},
                   "inbounds": [{"type": "mixed", "tag": "in", "listen": HOST,
                                 "listen_port": veer_port}],
                   "outbounds": [{"type": "shadowsocks", "tag": "ss", "server": HOST,
                                  "server_port": ss_port, "method": method,
                                  "password": PASSWORD}]}
            cfg_path = os.path.join(tmp, "veer-%s.json" % method)
            with open(cfg_path, "w") as f:
                json.dump(cfg, f)
            veer = spawn([a.veer, "run", "-c", cfg_path], os.path.join(tmp, "veer-%s.log" % method))
            local = spawn(["ss-local", "-s", HOST, "-p", str(ss_port), "-b", HOST, "-l",
                           str(local_port)] + common, os.path.join(tmp, "ss-local-%s.log" % method))
            for p, port in ((server, ss_port), (veer, veer_port), (local, local_port)):
                if not wait_port(port, p):
                    raise RuntimeError("%s did not start (logs in %s)" % (p.args[0], tmp))
            for client, proc, port in (("veer", veer, veer_port), ("ss-local", local, local_port)):
                for direction, fn, target in (("upload", upload, sink_port),
                                              ("download", download, source_port)):
                    fn(port, target, 8 << 20)  # warm-up
                    times, cpu_c, cpu_s = [], [], []
                    for _ in range(a.runs):
                        c0, s0 = cpu_seconds(proc.pid), cpu_seconds(server.pid)
                        times.append(fn(port, target, size))
                        time.sleep(0.05)  # let the last bytes' CPU be accounted
                        cpu_c.append((cpu_seconds(proc.pid) - c0) / gib)
                        cpu_s.append((cpu_seconds(server.pid) - s0) / gib)
                    gbps = statistics.median(size * 8 / t / 1e9 for t in times)
                    rows.append((method, client, direction, gbps, statistics.median(cpu_c),
                                 statistics.median(cpu_s)))
                    print("%-23s %-9s %-9s %6.2f Gbit/s  %5.2f s/GiB (ss-server %5.2f)" %
                          rows[-1], file=sys.stderr, flush=True)
            for p in (veer, local, server):
                p.terminate()
                p.wait(10)
    finally:
        for p in STARTED:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    print()
    print("%d MiB per run, median of %d runs; load average now %s" %
          (a.size_mib, a.runs, " ".join(open("/proc/loadavg").read().split()[:3])))
    print()
    print("| method | client | direction | Gbit/s | client CPU s/GiB | ss-server CPU s/GiB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %s | %.2f | %.2f | %.2f |" % r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
