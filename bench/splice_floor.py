#!/usr/bin/env python3
"""The kernel's own price for relaying TCP through a process on this machine, beside veer.

`make bench-run` reports CPU seconds per GiB for each proxy. Issue 3 asks veer for ≤ 0.15 CPU
s/GB, a figure measured on another machine. This script measures the floor on this one: a
forwarder with no logic at all (Python's os.splice in blocking mode, one thread per direction,
256 KiB pipes, the same kernel path veer's splice relay takes: socket → pipe → socket), so that
its CPU time is nearly all kernel TCP and pipe work. Then veer (the `direct` inbound with
`override_address`, `direct` outbound) under the same iperf3 transfer. Runs alternate.

    python3 bench/splice_floor.py [--veer build-bench/veer] [--seconds 5] [--runs 3] [--pipe-kib 256]

Loopback only (127.0.0.1, ports 25501-25503); every process it starts is stopped by PID.
Prints a Markdown table: Gbit/s and CPU s/GiB of the relaying process, per direction.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
P_SRV, P_FLOOR, P_VEER = 25501, 25502, 25503
PIPE_SIZE = 256 * 1024
F_SETPIPE_SZ = 1031


def floor_forwarder(stop):
    """Accepts on P_FLOOR, connects to P_SRV, splices both ways until EOF."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((HOST, P_FLOOR))
    ls.listen(16)
    ls.settimeout(0.2)

    def pump(src, dst):
        r, w = os.pipe()
        try:
            import fcntl
            fcntl.fcntl(w, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass
        try:
            while True:
                n = os.splice(src.fileno(), w, 1 << 20)
                if n == 0:
                    break
                while n > 0:
                    n -= os.splice(r, dst.fileno(), n)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            os.close(r)
            os.close(w)

    def serve(c):
        s = socket.create_connection((HOST, P_SRV))
        for x in (c, s):
            x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t1 = threading.Thread(target=pump, args=(c, s), daemon=True)
        t2 = threading.Thread(target=pump, args=(s, c), daemon=True)
        t1.start(); t2.start(); t1.join(); t2.join()
        c.close(); s.close()

    while not stop.is_set():
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    ls.close()


def cpu_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu():
    t = os.times()
    return t.user + t.system


def iperf(port, seconds, reverse):
    srv = subprocess.Popen(["iperf3", "-s", "-1", "-B", HOST, "-p", str(P_SRV)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        cmd = ["iperf3", "-c", HOST, "-p", str(port), "-t", str(seconds), "-J"]
        if reverse:
            cmd.append("-R")
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
        j = json.loads(out)
        if "error" in j:
            raise RuntimeError(j["error"])
        b = j["end"]["sum_received"]["bytes"]
        return b, b * 8 / (j["end"]["sum_received"]["seconds"] or seconds) / 1e9
    finally:
        srv.kill()
        srv.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--veer", default=os.path.join(os.path.dirname(__file__), "..", "build-bench", "veer"))
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pipe-kib", type=int, default=256, help="the floor forwarder's pipe size")
    a = ap.parse_args()
    global PIPE_SIZE
    PIPE_SIZE = a.pipe_kib * 1024
    floor_name = f"floor (os.splice, {a.pipe_kib} KiB pipes)"
    if not hasattr(os, "splice"):
        sys.exit("splice_floor: needs Python 3.10+ (os.splice)")
    stop = threading.Event()
    threading.Thread(target=floor_forwarder, args=(stop,), daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="veer-floor-")
    cfg = {"log": {"level": "warn"},
           "inbounds": [{"type": "direct", "tag": "in", "listen": HOST, "listen_port": P_VEER,
                         "network": "tcp", "override_address": HOST, "override_port": P_SRV}],
           "outbounds": [{"type": "direct", "tag": "direct"}]}
    path = os.path.join(tmp, "veer.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    veer = subprocess.Popen([a.veer, "run", "-c", path], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(tmp, "veer.log"), "w"))
    res = {}
    try:
        time.sleep(0.5)
        for run in range(a.runs):
            for name, port in ((floor_name, P_FLOOR), ("veer", P_VEER)):
                for reverse in (False, True):
                    c0 = self_cpu() if port == P_FLOOR else cpu_of(veer.pid)
                    b, gbps = iperf(port, a.seconds, reverse)
                    c1 = self_cpu() if port == P_FLOOR else cpu_of(veer.pid)
                    per = (c1 - c0) / (b / 2**30)
                    res.setdefault((name, reverse), []).append((gbps, per))
                    print(f"run {run + 1} {name} {'down' if reverse else 'up'}: {gbps:.1f} Gbit/s, "
                          f"{per:.3f} CPU s/GiB", file=sys.stderr)
    finally:
        stop.set()
        veer.terminate()
        veer.wait()
    med = lambda xs: sorted(xs)[len(xs) // 2]
    print("| relay | upload Gbit/s | upload CPU s/GiB | download Gbit/s | download CPU s/GiB |")
    print("|---|---|---|---|---|")
    for name in (floor_name, "veer"):
        up, down = res[(name, False)], res[(name, True)]
        print(f"| {name} | {med([g for g, _ in up]):.1f} | {med([c for _, c in up]):.3f} | "
              f"{med([g for g, _ in down]):.1f} | {med([c for _, c in down]):.3f} |")


if __name__ == "__main__":
    main()
