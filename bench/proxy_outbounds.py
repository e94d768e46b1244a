#!/usr/bin/env python3
"""Proxy client benchmark: veer's shadowsocks and trojan outbounds beside shadowsocks-libev's
ss-local, v2ray and Debian's trojan (client mode) doing the same job on the same machine:

    bulk client --SOCKS5--> veer (mixed -> shadowsocks)        --> ss-server   --> sink / source
    bulk client --SOCKS5--> ss-local                           --> ss-server   --> sink / source
    bulk client --SOCKS5--> v2ray (socks -> shadowsocks)       --> ss-server   --> sink / source
    bulk client --SOCKS5--> veer (mixed -> trojan, TLS)        --> trojan (server) --> sink / source
    bulk client --SOCKS5--> v2ray (socks -> trojan, TLS)       --> trojan (server) --> sink / source
    bulk client --SOCKS5--> trojan (run_type client, TLS)      --> trojan (server) --> sink / source

One ss-server per shadowsocks method (aes-128-gcm, chacha20-ietf-poly1305) and one trojan server
are shared by every client of that group. The trojan server's certificate is signed by a test CA
made here with the openssl CLI; every trojan client verifies it against that CA (v2ray through
tlsSettings.certificates with usage "verify"; if that v2ray build refuses it, the script falls back
to allowInsecure and says so in the output). The trojan server is pinned to AES-128-GCM
(TLS_AES_128_GCM_SHA256 for TLS 1.3, ECDHE-RSA-AES128-GCM-SHA256 for TLS 1.2) so that every client
runs the same cipher; veer (mbedTLS 2.28) speaks TLS 1.2, the others TLS 1.3.

The payload, client, warm-up and number of runs are those of bench/shadowsocks.py (whose upload,
download and sink/source code this script reuses): upload sends SIZE length-prefixed bytes and
the sink answers the count; download receives SIZE bytes from the source, timed to the last byte
(then the EOF is awaited: more bytes, or none within 15 s, fail the row). A run whose byte count
is wrong (or that errors or times out) makes the row FAILED, never fast. Throughput is SIZE over
the time from the SOCKS reply to the last byte, median of RUNS; CPU is user+system seconds per GiB
of the client-side proxy and, in its own column, of the shared server. Every process is started
here and stopped by PID.

Dependencies: shadowsocks-libev, v2ray, trojan, openssl (Debian packages). Missing ones are
installed with apt-get when run as root and --no-install is not given; otherwise their rows are
skipped with the reason.

Entry point (standalone):
    python3 bench/proxy_outbounds.py [--size-mib 128] [--runs 3] [--veer build/veer]
                                     [--groups shadowsocks,trojan] [--methods aes-128-gcm,...]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shadowsocks as ss  # noqa: E402  (the sink/source, the client, process helpers)

HOST = ss.HOST
PASSWORD = ss.PASSWORD
SERVER_NAME = "proxy.test"
# tool -> Debian package
PACKAGES = {"ss-server": "shadowsocks-libev", "ss-local": "shadowsocks-libev", "v2ray": "v2ray",
            "trojan": "trojan", "openssl": "openssl"}
EOF_WAIT = 15  # seconds a download waits for the EOF after its last byte
RUN_DEADLINE = 120  # seconds a single run may take before the row is FAILED


def dependencies(install):
    """Installs the missing Debian packages (as root, unless --no-install); returns the set of
    tools still missing."""
    missing = {t for t in PACKAGES if not shutil.which(t)}
    if missing and install and os.geteuid() == 0 and shutil.which("apt-get"):
        pkgs = sorted({PACKAGES[t] for t in missing})
        print("installing %s" % " ".join(pkgs), file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends"] + pkgs,
                       stdout=subprocess.DEVNULL, timeout=600)
        missing = {t for t in PACKAGES if not shutil.which(t)}
    return missing


def version(argv):
    try:
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10,
                             text=True).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    for line in out.splitlines():
        if line.strip() and not line.startswith("Welcome"):
            return line.strip()
    return "?"


def make_pki(d):
    """ca.pem signs server.pem (CN/SAN proxy.test and 127.0.0.1)."""
    def run(argv):
        subprocess.run(["openssl"] + argv, cwd=d, check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         "/CN=veer bench ca", "-keyout", "ca.key", "-out", "ca.pem"])
    run(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + SERVER_NAME, "-keyout",
         "server.key", "-out", "server.csr"])
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:%s,IP:127.0.0.1\n" % SERVER_NAME)
    run(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem"])
    return os.path.join(d, "ca.pem")


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
    return path


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def start(argv, port, log, tmp):
    p = ss.spawn(argv, log)
    if not ss.wait_port(port, p):
        stop(p)
        raise RuntimeError("%s did not start (log %s)" % (argv[0], log))
    return p


def v2ray_config(port, outbound):
    return {"log": {"loglevel": "warning"},
            "inbounds": [{"listen": HOST, "port": port, "protocol": "socks",
                          "settings": {"auth": "noauth", "udp": False}}],
            "outbounds": [outbound]}


def download(port, source_port, size):
    """shadowsocks.py's download, timed to the last byte rather than to the EOF: v2ray holds the
    client side open for a while after the server has closed (its uplinkOnly policy), which is
    not throughput. The EOF is still awaited (up to EOF_WAIT s) so that extra bytes fail."""
    s = ss.socks_connect(port, source_port)
    s.sendall(ss.struct.pack(">Q", size))
    buf = bytearray(1 << 20)
    t0 = time.perf_counter()
    n, dt = 0, None
    while True:
        k = s.recv_into(buf)
        if not k:
            break
        n += k
        if n >= size and dt is None:
            dt = time.perf_counter() - t0
            s.settimeout(EOF_WAIT)
    s.close()
    if n != size:
        raise RuntimeError("download: got %d of %d bytes" % (n, size))
    return dt


def measure(group, variant, client, proc, port, server, a, sink_port, source_port):
    """Upload and download rows for one client; a failure of any run makes the row FAILED."""
    size = a.size_mib << 20
    gib = size / float(1 << 30)
    rows = []
    for direction, fn, target in (("upload", ss.upload, sink_port),
                                  ("download", download, source_port)):
        times, cpu_c, cpu_s, err = [], [], [], None
        try:
            fn(port, target, 8 << 20)  # warm-up
            for _ in range(a.runs):
                c0, s0 = ss.cpu_seconds(proc.pid), ss.cpu_seconds(server.pid)
                t = fn(port, target, size)
                if t > RUN_DEADLINE:
                    raise RuntimeError("run took %.0f s" % t)
                times.append(t)
                time.sleep(0.05)  # let the last bytes' CPU be accounted
                cpu_c.append((ss.cpu_seconds(proc.pid) - c0) / gib)
                cpu_s.append((ss.cpu_seconds(server.pid) - s0) / gib)
        except (RuntimeError, OSError, ValueError) as e:
            err = str(e) or type(e).__name__
        if err:
            row = (group, variant, client, direction, None, None, None, err)
            print("%-8s %-23s %-13s %-9s FAILED: %s" % (row[:4] + (err,)), file=sys.stderr,
                  flush=True)
        else:
            row = (group, variant, client, direction,
                   statistics.median(size * 8 / t / 1e9 for t in times),
                   statistics.median(cpu_c), statistics.median(cpu_s), None)
            print("%-8s %-23s %-13s %-9s %6.2f Gbit/s  %5.2f s/GiB (server %5.2f)" % row[:7],
                  file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def shadowsocks_group(method, a, tmp, missing, sink_port, source_port, notes):
    if {"ss-server"} & missing:
        notes.append("shadowsocks %s: skipped, ss-server not installed" % method)
        return []
    rows = []
    ss_port = ss.free_port()
    common = ["-k", PASSWORD, "-m", method]
    server = start(["ss-server", "-s", HOST, "-p", str(ss_port)] + common, ss_port,
                   os.path.join(tmp, "ss-server-%s.log" % method), tmp)
    try:
        clients = []
        port = ss.free_port()
        cfg = write_json(os.path.join(tmp, "veer-ss-%s.json" % method), {
            "log": {"level": "warn"},
            "inbounds": [{"type": "mixed", "tag": "in", "listen": HOST, "listen_port": port}],
            "outbounds": [{"type": "shadowsocks", "tag": "ss", "server": HOST,
                           "server_port": ss_port, "method": method, "password": PASSWORD}]})
        clients.append(("veer", [a.veer, "run", "-c", cfg], port))
        if "ss-local" not in missing:
            port = ss.free_port()
            clients.append(("ss-local", ["ss-local", "-s", HOST, "-p", str(ss_port), "-b", HOST,
                                         "-l", str(port)] + common, port))
        else:
            notes.append("shadowsocks %s: ss-local skipped, not installed" % method)
        if "v2ray" not in missing:
            port = ss.free_port()
            cfg = write_json(os.path.join(tmp, "v2ray-ss-%s.json" % method), v2ray_config(port, {
                "protocol": "shadowsocks",
                "settings": {"servers": [{"address": HOST, "port": ss_port, "method": method,
                                          "password": PASSWORD}]}}))
            clients.append(("v2ray", ["v2ray", "-config", cfg], port))
        else:
            notes.append("shadowsocks %s: v2ray skipped, not installed" % method)
        for name, argv, port in clients:
            log = os.path.join(tmp, "%s-ss-%s.log" % (name, method))
            try:
                proc = start(argv, port, log, tmp)
            except RuntimeError as e:
                rows += [("shadowsocks", method, name, d, None, None, None, str(e))
                         for d in ("upload", "download")]
                continue
            try:
                rows += measure("shadowsocks", method, name, proc, port, server, a, sink_port,
                                source_port)
            finally:
                stop(proc)
    finally:
        stop(server)
    return rows


def trojan_group(a, tmp, missing, sink_port, source_port, notes):
    if {"trojan", "openssl"} & missing:
        notes.append("trojan: skipped, %s not installed" % " and ".join(
            sorted({"trojan", "openssl"} & missing)))
        return []
    ca = make_pki(tmp)
    rows = []
    tport = ss.free_port()
    conf = write_json(os.path.join(tmp, "trojan-server.json"), {
        "run_type": "server", "local_addr": HOST, "local_port": tport,
        "remote_addr": HOST, "remote_port": ss.free_port(),  # fallback: nothing listens there
        "password": [PASSWORD], "log_level": 2,
        "ssl": {"cert": os.path.join(tmp, "server.pem"), "key": os.path.join(tmp, "server.key"),
                "cipher": "ECDHE-RSA-AES128-GCM-SHA256",
                "cipher_tls13": "TLS_AES_128_GCM_SHA256", "alpn": ["http/1.1"]},
        "tcp": {"no_delay": True}})
    server = start(["trojan", "-c", conf], tport, os.path.join(tmp, "trojan-server.log"), tmp)
    variant = "TLS, AES-128-GCM"
    try:
        clients = []
        port = ss.free_port()
        cfg = write_json(os.path.join(tmp, "veer-trojan.json"), {
            "log": {"level": "warn"},
            "inbounds": [{"type": "mixed", "tag": "in", "listen": HOST, "listen_port": port}],
            "outbounds": [{"type": "trojan", "tag": "trojan", "server": HOST,
                           "server_port": tport, "password": PASSWORD,
                           "tls": {"enabled": True, "server_name": SERVER_NAME,
                                   "certificate_path": ca}}]})
        clients.append(("veer", lambda: [a.veer, "run", "-c", cfg], port))
        if "v2ray" not in missing:
            vport = ss.free_port()

            def v2ray_argv(insecure):
                tls = {"serverName": SERVER_NAME}
                if insecure:
                    tls["allowInsecure"] = True
                else:
                    tls["disableSystemRoot"] = True
                    tls["certificates"] = [{"usage": "verify", "certificateFile": ca}]
                c = write_json(os.path.join(tmp, "v2ray-trojan.json"), v2ray_config(vport, {
                    "protocol": "trojan",
                    "settings": {"servers": [{"address": HOST, "port": tport,
                                              "password": PASSWORD}]},
                    "streamSettings": {"network": "tcp", "security": "tls",
                                       "tlsSettings": tls}}))
                return ["v2ray", "-config", c]
            clients.append(("v2ray", v2ray_argv, vport))
        else:
            notes.append("trojan: v2ray skipped, not installed")
        port = ss.free_port()
        cfg_t = write_json(os.path.join(tmp, "trojan-client.json"), {
            "run_type": "client", "local_addr": HOST, "local_port": port,
            "remote_addr": HOST, "remote_port": tport, "password": [PASSWORD], "log_level": 2,
            "ssl": {"verify": True, "verify_hostname": True, "cert": ca, "sni": SERVER_NAME,
                    "alpn": ["http/1.1"]},
            "tcp": {"no_delay": True}})
        clients.append(("trojan-client", lambda: ["trojan", "-c", cfg_t], port))
        for name, argv_fn, port in clients:
            log = os.path.join(tmp, "%s-trojan.log" % name)
            try:
                if name == "v2ray":
                    # The CA first; allowInsecure only if this v2ray cannot verify against it.
                    proc = start(argv_fn(False), port, log, tmp)
                    try:
                        download(port, source_port, 1 << 16)
                        notes.append("trojan: v2ray verified the server against the test CA "
                                     "(tlsSettings.certificates usage \"verify\")")
                    except (RuntimeError, OSError):
                        stop(proc)
                        proc = start(argv_fn(True), port, log + ".insecure", tmp)
                        notes.append("trojan: v2ray could not verify against the test CA; "
                                     "it ran with allowInsecure")
                else:
                    proc = start(argv_fn(), port, log, tmp)
            except RuntimeError as e:
                rows += [("trojan", variant, name, d, None, None, None, str(e))
                         for d in ("upload", "download")]
                continue
            try:
                rows += measure("trojan", variant, name, proc, port, server, a, sink_port,
                                source_port)
            finally:
                stop(proc)
    finally:
        stop(server)
    notes.append("trojan: veer verified against the test CA (tls.certificate_path), "
                 "trojan-client too (ssl.cert)")
    return rows


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--veer",
                    default=os.environ.get("VEER_BIN", os.path.join(root, "build", "veer")))
    ap.add_argument("--groups", default="shadowsocks,trojan")
    ap.add_argument("--methods", default=",".join(ss.METHODS))
    ap.add_argument("--no-install", action="store_true", help="do not apt-get missing tools")
    a = ap.parse_args()
    if not os.access(a.veer, os.X_OK):
        print("veer binary not found at %s (build it, or pass --veer)" % a.veer, file=sys.stderr)
        return 1
    missing = dependencies(not a.no_install)
    groups = a.groups.split(",")
    tmp = tempfile.mkdtemp(prefix="veer-proxybench-")
    sink_port, source_port = ss.free_port(), ss.free_port()
    # shadowsocks.py's own --serve entry point runs the sink/source in a child process.
    srv = ss.spawn([sys.executable, ss.__file__, "--serve", str(sink_port), str(source_port)],
                   os.path.join(tmp, "sink.log"))
    rows, notes = [], []
    load0 = " ".join(open("/proc/loadavg").read().split()[:3])
    t0 = time.time()
    try:
        if not ss.wait_port(sink_port, srv) or not ss.wait_port(source_port, srv):
            raise RuntimeError("sink/source did not start")
        if "shadowsocks" in groups:
            for method in a.methods.split(","):
                rows += shadowsocks_group(method, a, tmp, missing, sink_port, source_port, notes)
        if "trojan" in groups:
            rows += trojan_group(a, tmp, missing, sink_port, source_port, notes)
    finally:
        for p in ss.STARTED:
            stop(p)
    print()
    print("%d MiB per run, %d runs + an 8 MiB warm-up per row, medians; %.0f s in all; "
          "load average at start %s, at end %s" %
          (a.size_mib, a.runs, time.time() - t0, load0,
           " ".join(open("/proc/loadavg").read().split()[:3])))
    print("versions: %s; %s; %s; %s" % (
        version(["ss-server", "-h"]) if "ss-server" not in missing else "ss-server missing",
        version(["v2ray", "-version"]) if "v2ray" not in missing else "v2ray missing",
        version(["trojan", "-v"]) if "trojan" not in missing else "trojan missing",
        version(["openssl", "version"]) if "openssl" not in missing else "openssl missing"))
    for n in notes:
        print("note: " + n)
    print()
    print("| protocol | method | client | direction | Gbit/s | client CPU s/GiB | "
          "server CPU s/GiB |")
    print("|---|---|---|---|---|---|---|")
    for g, v, c, d, gbps, cc, cs, err in rows:
        if err:
            print("| %s | %s | %s | %s | FAILED | – | – |" % (g, v, c, d))
        else:
            print("| %s | %s | %s | %s | %.2f | %.2f | %.2f |" % (g, v, c, d, gbps, cc, cs))
    failed = [r for r in rows if r[7]]
    for r in failed:
        print("FAILED %s %s %s %s: %s" % (r[0], r[1], r[2], r[3], r[7]))
    print("logs and configs: %s" % tmp)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
