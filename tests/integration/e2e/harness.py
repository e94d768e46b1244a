"""Shared helpers for veer's end-to-end tests: start veer on a config, local servers, SOCKS."""
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import struct
import subprocess
import tempfile
import threading
import time

VEER = os.environ.get("VEER_BIN", "build/veer")
SOURCE = os.environ.get("VEER_SOURCE_DIR", ".")


class Veer:
    """A veer process on a config (dict or text); knows the ports its inbounds listen on."""

    def __init__(self, config, extra_files=None, env=None):
        self.dir = tempfile.mkdtemp(prefix="veer-e2e-")
        for name, text in (extra_files or {}).items():
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
        self.config_path = os.path.join(self.dir, "config.json")
        self.write_config(config)
        self.log_path = os.path.join(self.dir, "veer.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([VEER, "run", "-c", self.config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})))
        self.ports = self._wait_ports()

    def write_config(self, config):
        with open(self.config_path, "w") as f:
            f.write(config if isinstance(config, str) else json.dumps(config, indent=2))

    def logtext(self):
        with open(self.log_path) as f:
            return f.read()

    def _wait_ports(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            text = self.logtext()
            if "veer started" in text:
                return {m.group(1): int(m.group(2)) for m in
                        re.finditer(r"inbound/\w+\[([^\]]+)\]: listening on [^ \n]*:(\d+)", text)}
            if self.proc.poll() is not None:
                raise RuntimeError("veer exited %d:\n%s" % (self.proc.returncode, text))
            time.sleep(0.05)
        raise RuntimeError("veer did not start:\n" + self.logtext())

    def wait_log(self, pattern, timeout=5, start=0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.logtext()
            if re.search(pattern, text[start:]):
                return True
            time.sleep(0.05)
        return False

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def base_config(port=0, users=None, extra_rules=None, final="direct"):
    inbound = {"type": "mixed", "tag": "mixed-in", "listen": "127.0.0.1", "listen_port": port}
    if users:
        inbound["users"] = users
    rules = [{"domain_suffix": ["blocked.test"], "action": "reject"}]
    rules += extra_rules or []
    return {
        "log": {"level": "debug"},
        "inbounds": [inbound],
        "outbounds": [{"type": "direct", "tag": "direct"}, {"type": "block", "tag": "block"}],
        "route": {"rules": rules, "final": final},
    }


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections = []

    def setup(self):
        super().setup()
        _Handler.connections.append(self.client_address)

    def do_GET(self):
        body = ("path=%s host=%s\n" % (self.path, self.headers.get("Host"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(n)
        body = b"got " + str(len(data)).encode() + b" bytes\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class HttpServer:
    """A real HTTP/1.1 server (Python's http.server) on 127.0.0.1, with keep-alive."""

    def __init__(self):
        _Handler.connections = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def connections(self):
        return list(_Handler.connections)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class UdpEcho:
    """A UDP echo server on 127.0.0.1 (replies with b'echo:' + payload)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sources = []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while self.running:
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            self.sources.append(addr)
            self.sock.sendto(b"echo:" + data, addr)

    def stop(self):
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


class EchoTcp:
    """A TCP server that echoes everything back, and half-closes when the client does."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with c:
            while True:
                try:
                    d = c.recv(65536)
                except OSError:
                    return
                if not d:
                    try:
                        c.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                c.sendall(d)

    def stop(self):
        self.srv.close()


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            raise EOFError("closed after %d of %d bytes" % (len(out), n))
        out += d
    return out


def socks5_connect(port, host, dport, user=None, password=None, timeout=5):
    """Returns (socket, reply code). The socket is connected through veer when code == 0."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if user is None:
        s.sendall(b"\x05\x01\x00")
    else:
        s.sendall(b"\x05\x01\x02")
    ver, method = recv_exact(s, 2)
    if method == 0xFF:
        return s, -1
    if method == 2:
        u, p = user.encode(), password.encode()
        s.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
        _, status = recv_exact(s, 2)
        if status != 0:
            return s, -2
    h = host.encode()
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(h)]) + h + struct.pack(">H", dport))
    head = recv_exact(s, 4)
    atyp = head[3]
    alen = {1: 4, 4: 16}.get(atyp)
    if alen is None:
        alen = recv_exact(s, 1)[0]
    recv_exact(s, alen + 2)
    return s, head[1]


def socks5_udp_associate(port, timeout=5):
    """Opens a SOCKS5 UDP association (no auth) on a local SOCKS port. Returns the control
    connection (the association lives as long as it does) and the relay's (host, port)."""
    ctl = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    ctl.sendall(b"\x05\x01\x00")
    if recv_exact(ctl, 2) != b"\x05\x00":
        raise RuntimeError("SOCKS5 method negotiation failed")
    ctl.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
    rep = recv_exact(ctl, 10)
    if rep[1] != 0:
        raise RuntimeError("UDP ASSOCIATE refused with code %d" % rep[1])
    return ctl, ("127.0.0.1", struct.unpack(">H", rep[8:10])[0])


def socks5_udp_header(ip, port):
    """The SOCKS5 UDP request header for an IPv4 destination."""
    return b"\x00\x00\x00\x01" + socket.inet_aton(ip) + struct.pack(">H", port)


def http_get_raw(s, host, path="/", absolute=True, keep_alive=True):
    target = "http://%s%s" % (host, path) if absolute else path
    req = "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (
        target, host, "" if keep_alive else "Connection: close\r\n")
    s.sendall(req.encode())
    return read_response(s)


def read_response(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise EOFError("closed before response head")
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        d = s.recv(4096)
        if not d:
            break
        rest += d
    return status, headers, rest[:n]
