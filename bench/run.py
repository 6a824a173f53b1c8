#!/usr/bin/env python3
"""bench/run.py - run every workload of issue 11 against bottled and its peers
(redis, nginx, nc, iperf3) in the same run and write a Markdown table.

    bench/run.py --out bench/results.md --plot bench/scaling.png \
                 --bin build/bench --tools build/bench/tools [--reps 3] [--quick]
                 [--only download,upload,fanout,reqresp,idle,storm,nonchat,transfer,scaling,
                         cluster,tls]

Each repetition runs bottle and then each peer back to back; a figure is the
median of the repetitions with its range. Everything listens on 127.0.0.1,
on ports picked here; servers get configurations written into a temporary
folder on tmpfs (/dev/shm), and every process started is stopped by its PID,
on failure and on Ctrl-C too. A workload that fails (a generator's check, a
file that differs) is reported as FAILED and scores nothing. See bench/README.md.
"""

import argparse
import datetime
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
GiB = 1 << 30
MiB = 1 << 20

PROCS = []          # every Popen we started, stopped by PID at the end


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- processes

def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def listening(port):
    """Is something listening on 127.0.0.1:port? (from /proc, no connection)"""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            w = line.split()
            if w[1] == want and w[3] == "0A":
                return True
    return False


def wait_listen(port, proc, timeout=10.0, what="server"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if listening(port):
            return
        if proc.poll() is not None:
            raise BenchError(f"{what} exited ({proc.returncode}) before listening on {port}")
        time.sleep(0.02)
    raise BenchError(f"{what} not listening on {port} after {timeout} s")


def start(argv, logfile=None, **kw):
    out = open(logfile, "ab") if logfile else subprocess.DEVNULL
    p = subprocess.Popen([str(a) for a in argv], stdin=kw.pop("stdin", subprocess.DEVNULL),
                         stdout=kw.pop("stdout", out), stderr=kw.pop("stderr", out), **kw)
    PROCS.append(p)
    return p


def stop(p, timeout=5.0):
    if p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGTERM)
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=timeout)
        except ProcessLookupError:
            pass
    if p in PROCS:
        PROCS.remove(p)


def stop_all():
    for p in list(PROCS):
        try:
            stop(p, timeout=3.0)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def run(argv, timeout, what, **kw):
    """Run to completion (bounded): (seconds, stdout). Fails on exit != 0."""
    t0 = time.monotonic()
    p = start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(p)
        raise BenchError(f"{what}: no result in {timeout} s")
    secs = time.monotonic() - t0
    PROCS.remove(p)
    if p.returncode != 0:
        why = (err.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise BenchError(f"{what}: exit {p.returncode}: {why}")
    return secs, out.decode(errors="replace")


def kv(line):
    return {k: float(v) for k, v in re.findall(r"(\w+)=(-?[\d.]+)", line)}


def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def same_file(a, b, what):
    r = subprocess.run(["cmp", "-s", str(a), str(b)], timeout=120)
    if r.returncode != 0:
        raise BenchError(f"{what}: {b} differs from {a}: scores nothing")


# ---------------------------------------------------------------- servers

class Bench:
    def __init__(self, a):
        self.a = a
        self.quick = a.quick
        self.reps = 1 if a.quick else a.reps
        self.bin = Path(a.bin).resolve()
        self.tools = Path(a.tools).resolve()
        self.tmp = Path(tempfile.mkdtemp(prefix="bottle-bench-", dir="/dev/shm"))
        self.logs = self.tmp / "logs"
        self.logs.mkdir()
        self.env = dict(os.environ, XDG_STATE_HOME=str(self.tmp / "state"))
        self.rows = []      # (section, label, unit, better, bottle_vals, [(peer, vals)])
        self.notes = []
        self.scaling = {}   # (server, N) -> (rate, cpu_ns)
        self.nofile = raise_nofile()
        self.maxclients = max(1000, self.nofile - 200)

    # -- servers: each returns (proc, port, pids to measure)
    def bottled(self, data, *extra):
        port = free_port()
        p = start([self.bin / "bottled", "-l", f"{HOST}:{port}", "-d", data, "-q",
                   "--max-clients", self.maxclients, *extra], self.logs / "bottled.log")
        wait_listen(port, p, what="bottled")
        return p, port, [p.pid]

    def redis(self):
        port = free_port()
        d = self.tmp / f"redis-{port}"
        d.mkdir()
        p = start(["redis-server", "--port", port, "--bind", HOST, "--save", "",
                   "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no",
                   "--dir", d, "--maxclients", self.maxclients, "--logfile", ""],
                  self.logs / "redis.log")
        wait_listen(port, p, what="redis-server")
        return p, port, [p.pid]

    def nginx(self, root, tls=None):
        """tls: (cert, key) for an https listener instead of http."""
        port = free_port()
        ssl = (f"ssl;\n        ssl_certificate {tls[0]};\n        ssl_certificate_key {tls[1]}"
               if tls else "")
        d = self.tmp / f"nginx-{port}"
        d.mkdir()
        conf = d / "nginx.conf"
        conf.write_text(f"""# written by bench/run.py
daemon off;
master_process on;
worker_processes 1;
user root;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
worker_rlimit_nofile {self.nofile};
events {{ worker_connections {self.maxclients}; use epoll; multi_accept on; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_header_timeout 600s;
    keepalive_timeout 600s;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    types {{ application/octet-stream bin; }}
    server {{
        listen {HOST}:{port} backlog=4096 {ssl};
        root {root};
    }}
}}
""")
        p = start(["nginx", "-p", d, "-c", conf, "-e", d / "error.log"], self.logs / "nginx.log")
        wait_listen(port, p, what="nginx")
        end = time.monotonic() + 5
        while not children(p.pid) and time.monotonic() < end:
            time.sleep(0.02)
        return p, port, [p.pid] + children(p.pid)

    def tool(self, name, *args, timeout=120):
        secs, out = run([self.tools / name, *args], timeout, name)
        return kv(out.strip().splitlines()[-1])

    # -- results
    def row(self, section, label, unit, better, bottle, peers):
        self.rows.append((section, label, unit, better, bottle, peers))

    def fail(self, section, why):
        log(f"{section}: FAILED: {why}")
        self.notes.append(f"**{section}: FAILED**: {why}")
        self.rows.append((section, "FAILED", "", "", None, []))

    def make_file(self, path, size):
        if path.exists() and path.stat().st_size == size:
            return
        chunk = os.urandom(8 * MiB)
        with open(path, "wb") as f:
            for i in range(size // len(chunk)):
                f.write(i.to_bytes(8, "little") + chunk[8:])
            f.write(os.urandom(size % len(chunk)))

    # ------------------------------------------------------------ workloads

    def w_download(self):
        size = 256 * MiB if self.quick else GiB
        srv = self.tmp / "srv"
        srv.mkdir(exist_ok=True)
        dl = self.tmp / "dl"
        dl.mkdir(exist_ok=True)
        big = srv / "big.bin"
        self.make_file(big, size)
        b, bport, _ = self.bottled(srv)
        n, nport, _ = self.nginx(srv)
        ip, iport = self.iperf3()
        try:
            got = dl / "big.bin"
            # Warm-up, not counted: bottled hashes a file it did not receive on
            # its first DOWNLOAD, then keeps the digest; nginx opens its cache.
            run([self.bin / "bottle", "get", "big.bin", "-o", got, f"{HOST}:{bport}"], 120,
                "bottle get (warm-up)", env=self.env)
            got.unlink()
            vb, vn, vi = [], [], []
            for _ in range(self.reps):
                t, _ = run([self.bin / "bottle", "get", "big.bin", "-o", got, f"{HOST}:{bport}"],
                           300, "bottle get", env=self.env)
                same_file(big, got, "bottle get")
                got.unlink()
                vb.append(size / t / 1e9)
                t, _ = run(["curl", "-sS", "--fail", "-o", got, f"http://{HOST}:{nport}/big.bin"],
                           300, "curl")
                same_file(big, got, "nginx -> curl")
                got.unlink()
                vn.append(size / t / 1e9)
                vi.append(self.iperf3_rate(iport, size))
        finally:
            stop(b), stop(n), stop(ip)
        mb = size // MiB
        self.row("1. download", f"{mb} MiB tmpfs→tmpfs: `bottle get` vs nginx (sendfile) → `curl -o`",
                 "GB/s", "higher", vb, [("nginx+curl", vn)])
        self.row("1. download", "the same vs iperf3 single stream (TCP ceiling)", "GB/s", "higher",
                 vb, [("iperf3", vi)])

    def w_tls(self):
        """The download of 1 inside TLS: bottled --tls-listen and nginx ssl on one
        certificate; `bottle --tls-ca` and `curl --cacert` verify it."""
        size = 256 * MiB if self.quick else GiB
        srv = self.tmp / "srv"
        srv.mkdir(exist_ok=True)
        dl = self.tmp / "dl"
        dl.mkdir(exist_ok=True)
        big = srv / "big.bin"
        self.make_file(big, size)
        cert, key = self.tmp / "tls.crt", self.tmp / "tls.key"
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-subj", "/CN=bench", "-addext", f"subjectAltName=IP:{HOST}", "-days", "2",
             "-keyout", key, "-out", cert], 60, "openssl req")
        tport = free_port()
        b, _, _ = self.bottled(srv, "--tls-listen", f"{HOST}:{tport}", "--tls-cert", cert,
                               "--tls-key", key)
        wait_listen(tport, b, what="bottled --tls-listen")
        n, nport, _ = self.nginx(srv, tls=(cert, key))
        get = [self.bin / "bottle", "--tls-ca", cert, "get", "big.bin", "-o", dl / "big.bin",
               f"{HOST}:{tport}"]
        try:
            got = dl / "big.bin"
            run(get, 120, "bottle get --tls (warm-up)", env=self.env)
            got.unlink()
            vb, vn = [], []
            for _ in range(self.reps):
                t, _ = run(get, 300, "bottle get --tls", env=self.env)
                same_file(big, got, "bottle get --tls")
                got.unlink()
                vb.append(size / t / 1e9)
                t, _ = run(["curl", "-sS", "--fail", "--cacert", cert, "-o", got,
                            f"https://{HOST}:{nport}/big.bin"], 300, "curl https")
                same_file(big, got, "nginx ssl -> curl")
                got.unlink()
                vn.append(size / t / 1e9)
        finally:
            stop(b), stop(n)
        self.row("11. TLS download", f"{size // MiB} MiB over TLS: `bottle get --tls` vs nginx "
                 "(ssl) → `curl -o`, one certificate", "GB/s", "higher", vb,
                 [("nginx+curl https", vn)])

    def iperf3(self):
        port = free_port()
        p = start(["iperf3", "-s", "-B", HOST, "-p", port], self.logs / "iperf3.log")
        wait_listen(port, p, what="iperf3")
        return p, port

    def iperf3_rate(self, port, size):
        import json
        _, out = run(["iperf3", "-c", HOST, "-p", port, "-n", size, "-J"], 120, "iperf3")
        j = json.loads(out)
        return j["end"]["sum_received"]["bits_per_second"] / 8 / 1e9

    def w_upload(self):
        size = 256 * MiB if self.quick else GiB
        srv = self.tmp / "srv"
        srv.mkdir(exist_ok=True)
        big = srv / "big.bin"
        self.make_file(big, size)
        up = self.tmp / "up"
        up.mkdir(exist_ok=True)
        b, bport, _ = self.bottled(up)
        ip, iport = self.iperf3()
        try:
            vb, vn, vi = [], [], []
            for _ in range(self.reps):
                stored = up / "up.bin"
                t, _ = run([self.bin / "bottle", "put", big, "--as", "up.bin", f"{HOST}:{bport}"],
                           300, "bottle put", env=self.env)
                same_file(big, stored, "bottle put")
                stored.unlink()
                vb.append(size / t / 1e9)
                vn.append(self.nc_upload(big, up / "nc.bin", size))
                vi.append(self.iperf3_rate(iport, size))
        finally:
            stop(b), stop(ip)
        mb = size // MiB
        self.row("2. upload", f"{mb} MiB tmpfs→tmpfs: `bottle put` vs `nc` → `nc -l > file`",
                 "GB/s", "higher", vb, [("nc→nc", vn)])
        self.row("2. upload", "the same vs iperf3 single stream", "GB/s", "higher", vb,
                 [("iperf3", vi)])

    def nc_upload(self, src, dst, size):
        port = free_port()
        with open(dst, "wb") as f:
            rx = start(["nc", "-l", HOST, port], stdout=f)
        try:
            wait_listen(port, rx, what="nc -l")
            t0 = time.monotonic()
            with open(src, "rb") as f:
                tx = start(["nc", "-N", HOST, port], stdin=f)
            tx.wait(timeout=300)
            rx.wait(timeout=300)
            t = time.monotonic() - t0
            if tx.returncode or rx.returncode:
                raise BenchError(f"nc: exit {tx.returncode}/{rx.returncode}")
        finally:
            stop(rx)
            for p in list(PROCS):
                if p.args[:2] == ["nc", "-N"]:
                    stop(p)
        same_file(src, dst, "nc -> nc -l")
        dst.unlink()
        return size / t / 1e9

    def fanout(self, port, proto, n, secs, pid=None, port2=None):
        args = ["--port", port, "--proto", proto, "-n", n, "--size", 64, "--inflight", 64,
                "--ms", int(secs * 1000)]
        if pid:
            args += ["--pid", pid]
        if port2:
            args += ["--port2", port2]
        return self.tool("bench-fanout", *args, timeout=secs + 180)

    def w_fanout(self):
        secs = 1 if self.quick else 5
        d = self.tmp / "chat"
        b, bport, bp = self.bottled(d)
        r, rport, rp = self.redis()
        try:
            for n in (1, 100, 1000):
                res = {"tpkt": [], "line": [], "redis": []}
                for _ in range(self.reps):
                    res["tpkt"].append(self.fanout(bport, "tpkt", n, secs))
                    res["line"].append(self.fanout(bport, "line", n, secs))
                    res["redis"].append(self.fanout(rport, "redis", n, secs))
                g = lambda k, f: [x[f] for x in res[k]]  # noqa: E731
                sec = "3. fan-out"
                self.row(sec, f"N = {n}, 64 B, 64 in flight, TPKT vs redis PUBLISH/SUBSCRIBE",
                         "deliveries/s", "higher", g("tpkt", "rate"), [("redis", g("redis", "rate"))])
                self.row(sec, f"N = {n}, lines vs redis", "deliveries/s", "higher",
                         g("line", "rate"), [("redis", g("redis", "rate"))])
                self.row(sec, f"N = {n}, TPKT latency p50", "µs", "lower", g("tpkt", "p50_us"),
                         [("redis", g("redis", "p50_us"))])
                self.row(sec, f"N = {n}, TPKT latency p99", "µs", "lower", g("tpkt", "p99_us"),
                         [("redis", g("redis", "p99_us"))])
        finally:
            stop(b), stop(r)

    def w_reqresp(self):
        secs = 1 if self.quick else 5
        b, bport, _ = self.bottled(self.tmp / "rr")
        r, rport, _ = self.redis()
        try:
            for depth in (16, 1):
                vb, vp, ve = [], [], []
                common = ["-c", 50, "-d", depth, "--ms", secs * 1000]
                for _ in range(self.reps):
                    vb.append(self.tool("bench-reqresp", "--port", bport, "--proto", "tpkt",
                                        *common)["rate"])
                    vp.append(self.tool("bench-reqresp", "--port", rport, "--proto", "redis",
                                        "--cmd", "ping", *common)["rate"])
                    ve.append(self.tool("bench-reqresp", "--port", rport, "--proto", "redis",
                                        "--cmd", "echo", *common)["rate"])
                self.row("4. request/response",
                         f"50 connections × {depth} in flight: `ECHO` (TPKT, 40 B) vs redis",
                         "req/s", "higher", vb, [("redis PING", vp), ("redis ECHO", ve)])
        finally:
            stop(b), stop(r)

    def conns(self, port, proto, n, pids, *extra):
        args = ["--port", port, "--proto", proto, "-n", n, "--timeout-ms", 120000]
        for p in pids:
            args += ["--pid", p]
        return self.tool("bench-conns", *args, *extra, timeout=180)

    def w_idle(self):
        n = 10000
        quiet = ["--quiet-ms", 2500, "--batch", 2048]
        vb, vr, vn = [], [], []
        for _ in range(self.reps):
            b, port, pids = self.bottled(self.tmp / "idle")
            try:
                vb.append(self.conns(port, "line", n, pids, *quiet)["per_conn_kib"])
            finally:
                stop(b)
            r, port, pids = self.redis()
            try:
                vr.append(self.conns(port, "redis", n, pids, *quiet)["per_conn_kib"])
            finally:
                stop(r)
            x, port, pids = self.nginx(self.tmp)
            try:
                vn.append(self.conns(port, "http", n, pids, *quiet)["per_conn_kib"])
            finally:
                stop(x)
        self.row("5. idle connections",
                 f"RSS growth per connection, {n} open and greeted (VmRSS, all fds seen in /proc)",
                 "KiB", "lower", vb, [("redis", vr), ("nginx (master+worker)", vn)])

    def w_storm(self):
        n = 10000
        g, p99, mx, rg, rp99 = [], [], [], [], []
        for _ in range(self.reps):
            b, port, pids = self.bottled(self.tmp / "storm")
            try:
                res = self.conns(port, "tpkt", n, pids, "--chatter-ms", 1, "--quiet-ms", 200,
                                 "--batch", 500)
            finally:
                stop(b)
            g.append(res["greet_s"])
            p99.append(res["chat_p99_us"] / 1000)
            mx.append(res["chat_max_us"] / 1000)
            r, port, pids = self.redis()
            try:
                res = self.conns(port, "redis", n, pids, "--chatter-ms", 1, "--quiet-ms", 200,
                                 "--batch", 500)
            finally:
                stop(r)
            rg.append(res["greet_s"])
            rp99.append(res["chat_p99_us"] / 1000)
        sec = "6. connect storm"
        self.row(sec, f"{n} clients connect, greeted (TPKT) and stay: time until all greeted "
                 "(goal < 2 s)", "s", "lower", g, [("redis (PING)", rg)])
        self.row(sec, "a chatter's ECHO round trip during the storm: p99 (goal < 50 ms)", "ms",
                 "lower", p99, [("redis", rp99)])
        self.row(sec, "the same: max", "ms", "lower", mx, [])

    def w_nonchat(self):
        d = self.tmp / "nonchat"
        b, port, _ = self.bottled(d)
        try:
            small = self.tmp / "small.bin"
            small.write_bytes(os.urandom(256 * 1024))
            mid = self.tmp / "mid.bin"
            mid.write_bytes(os.urandom(1 * MiB))
            w = socket.create_connection((HOST, port), timeout=5)
            w.sendall(b"\n")
            buf = b""
            while b"\n" not in buf:
                buf += w.recv(4096)
            seen = []

            def drain(wait):
                nonlocal buf
                w.settimeout(wait)
                end = time.monotonic() + wait
                while time.monotonic() < end:
                    try:
                        data = w.recv(65536)
                    except socket.timeout:
                        break
                    if not data:
                        raise BenchError("watcher closed")
                    buf += data
                lines, _, buf = buf.rpartition(b"\n")
                return [x.decode(errors="replace") for x in lines.split(b"\n") if x]

            drain(0.2)
            a = f"{HOST}:{port}"
            run([self.bin / "bottle", "put", small, a], 60, "bottle put", env=self.env)
            run([self.bin / "bottle", "ls", a], 60, "bottle ls", env=self.env)
            run([self.bin / "bottle", "get", "small.bin", "-o", self.tmp / "small.got", a], 60,
                "bottle get", env=self.env)
            slow = start([self.bin / "bottle", "put", mid, "--limit-rate", "1M", a],
                         self.logs / "slowput.log", env=self.env)
            # Ask WHO once the upload is moving: its partial has bytes.
            partial = d / ".bottle" / "partial"
            end = time.monotonic() + 10
            while time.monotonic() < end and not any(
                    p.stat().st_size > 0 for p in partial.glob("*.data")):
                time.sleep(0.01)
            w.sendall(b"WHO\n")
            lines = drain(0.4)
            slow.wait(timeout=30)
            PROCS.remove(slow)
            lines += drain(0.3)
            w.close()
            who = [x for x in lines if x.startswith("OK ")]
            seen = [x for x in lines if x.split(" ", 1)[0] in ("JOIN", "LEAVE")]
            count = who[0].split()[1] if who else "?"
            ok = not seen and count == "1"
            why = (f"{len(seen)} JOIN/LEAVE seen by a watching member, e.g. `{seen[0]}`; "
                   if seen else "no JOIN/LEAVE; ") + f"WHO during an upload counted {count}"
        finally:
            stop(b)
        self.row("7. non-chatters", "`bottle put`/`get`/`ls` stay out of the room: "
                 + ("**yes**" if ok else "**no**") + f" ({why})", "", "yes/no", None, [])

    def w_transfer(self):
        size = 256 * MiB if self.quick else GiB
        srv = self.tmp / "srv"
        srv.mkdir(exist_ok=True)
        big = srv / "big.bin"
        self.make_file(big, size)
        dl = self.tmp / "dl"
        dl.mkdir(exist_ok=True)
        got = dl / "t.bin"
        vm, vp99, vmax, vi99 = [], [], [], []
        for _ in range(self.reps):
            b, port, _ = self.bottled(srv)
            a = f"{HOST}:{port}"
            try:
                run([self.bin / "bottle", "get", "big.bin", "-o", got, a], 300, "warm-up",
                    env=self.env)
                got.unlink()
                time.sleep(0.2)  # no event to wait for: let the server settle after the warm-up
                idle = proc_status(b.pid, "VmRSS")
                try:
                    Path(f"/proc/{b.pid}/clear_refs").write_text("5")  # reset VmHWM
                except OSError:
                    pass
                up = start([self.bin / "bottle", "put", big, "--as", "t-up.bin", a],
                           self.logs / "t-put.log", env=self.env)
                down = start([self.bin / "bottle", "get", "big.bin", "-o", got, a],
                             self.logs / "t-get.log", env=self.env)
                peak = idle
                end = time.monotonic() + 300
                while (up.poll() is None or down.poll() is None) and time.monotonic() < end:
                    peak = max(peak, proc_status(b.pid, "VmRSS"))
                    time.sleep(0.01)
                peak = max(peak, proc_status(b.pid, "VmHWM"))
                for p in (up, down):
                    if p.poll() is None or p.returncode:
                        raise BenchError(f"transfer under memory watch: exit {p.poll()}")
                    PROCS.remove(p)
                same_file(big, got, "download beside upload")
                same_file(big, srv / "t-up.bin", "upload beside download")
                got.unlink()
                (srv / "t-up.bin").unlink()
                vm.append((peak - idle) / 1024)
                # latency: a probe ECHO every 10 ms while a download runs; idle first
                idle_s = 1 if self.quick else 3
                vi99.append(self.probe(port, idle_s, None)["chat_p99_us"] / 1000)
                res = self.probe(port, None, ["get", "big.bin", "-o", got, a])
                same_file(big, got, "download under the probe")
                got.unlink()
                vp99.append(res["chat_p99_us"] / 1000)
                vmax.append(res["chat_max_us"] / 1000)
            finally:
                stop(b)
        sec = "8. during transfer"
        self.row(sec, f"peak RSS minus idle while a {size // MiB} MiB upload and download run "
                 "(goal ≤ 8 MiB)", "MiB", "lower", vm, [])
        self.row(sec, "ECHO every 10 ms while a download runs: p99 (goal < 5 ms) vs the same "
                 "probe with no transfer", "ms", "lower", vp99, [("idle bottled", vi99)])
        self.row(sec, "the same: max", "ms", "lower", vmax, [])

    def probe(self, port, seconds, client_args):
        argv = [self.tools / "bench-conns", "--port", port, "--proto", "tpkt", "-n", 0,
                "--chatter-ms", 10, "--timeout-ms", 600000]
        if seconds:
            argv += ["--seconds", seconds]
        pr = start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = pr.stdout.readline().decode()
            if line.strip() != "ready":
                raise BenchError(f"probe: {line!r} {pr.stderr.read().decode()[-300:]}")
            if client_args:
                run([self.bin / "bottle", *client_args], 300, "bottle get under probe",
                    env=self.env)
                os.kill(pr.pid, signal.SIGTERM)
            out, err = pr.communicate(timeout=60)
        finally:
            stop(pr)
        if pr.returncode:
            raise BenchError(f"probe: exit {pr.returncode}: {err.decode()[-300:]}")
        return kv(out.decode().strip().splitlines()[-1])

    def w_scaling(self):
        secs = 1 if self.quick else 5
        b, bport, bp = self.bottled(self.tmp / "scale")
        r, rport, rp = self.redis()
        try:
            for n in (10, 100, 1000, 5000):
                vb, vr, cb, cr = [], [], [], []
                for _ in range(self.reps):
                    x = self.fanout(bport, "tpkt", n, secs, bp[0])
                    vb.append(x["rate"]), cb.append(x["cpu_ns_per_delivery"])
                    x = self.fanout(rport, "redis", n, secs, rp[0])
                    vr.append(x["rate"]), cr.append(x["cpu_ns_per_delivery"])
                self.scaling[n] = (statistics.median(vb), statistics.median(cb),
                                   statistics.median(vr), statistics.median(cr))
                self.row("9. scaling", f"N = {n}: deliveries/s (TPKT vs redis)", "deliveries/s",
                         "higher", vb, [("redis", vr)])
                self.row("9. scaling", f"N = {n}: server CPU per delivery", "ns", "lower", cb,
                         [("redis", cr)])
        finally:
            stop(b), stop(r)
        self.plot()

    def w_cluster(self):
        """Fan-out to N = 1000 members split across the two nodes of a cluster
        (issue 13: one redis carries what crosses), against one node alone and
        against redis PUBLISH/SUBSCRIBE itself."""
        secs = 1 if self.quick else 5
        n = 1000
        sec = "10. cluster fan-out"
        r, rport, rp = self.redis()
        url = f"redis://{HOST}:{rport}/benchcluster"
        shared = self.tmp / "cluster"
        a, aport, ap = self.bottled(shared, "--cluster", url, "--node-name", "a")
        b, bport, bp = self.bottled(shared, "--cluster", url, "--node-name", "b")
        one, oport, op = self.bottled(self.tmp / "one")
        try:
            why = cluster_crossing(aport, bport)
            if why:
                log(f"{sec}: SKIPPED: {why}")
                self.notes.append(f"**{sec}: skipped**: {why} (the nodes' cluster, issue 13, "
                                  "must carry a message from one node to the other)")
                self.rows.append((sec, "SKIPPED: the cluster does not deliver across nodes",
                                  "", "", None, []))
                return
            res = {"split": [], "one": [], "redis": []}
            for _ in range(self.reps):
                res["split"].append(self.fanout(aport, "tpkt", n, secs, port2=bport))
                res["one"].append(self.fanout(oport, "tpkt", n, secs))
                res["redis"].append(self.fanout(rport, "redis", n, secs))
            g = lambda k, f: [x[f] for x in res[k]]  # noqa: E731
            for field, unit, better, what in (("rate", "deliveries/s", "higher", "deliveries"),
                                              ("p99_us", "µs", "lower", "latency p99")):
                self.row(sec, f"N = {n} split across 2 nodes (one redis), TPKT, {what}", unit,
                         better, g("split", field),
                         [("one node", g("one", field)), ("redis", g("redis", field))])
        finally:
            stop(a), stop(b), stop(one), stop(r)

    def plot(self):
        if not self.scaling:
            return
        dat = self.tmp / "scaling.dat"
        with open(dat, "w") as f:
            f.write("# N bottle_rate bottle_cpu_ns redis_rate redis_cpu_ns\n")
            for n in sorted(self.scaling):
                f.write("%d %.0f %.1f %.0f %.1f\n" % (n, *self.scaling[n]))
        out = Path(self.a.plot).resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        gp = f"""set terminal pngcairo size 1000,420 font ',10'
set output '{out}'
set multiplot layout 1,2 title 'chat fan-out, 1 publisher, 64 B, 64 in flight ({self.mode()})'
set logscale x
set xlabel 'subscribers N'
set key top left
set grid
set ylabel 'deliveries/s'
plot '{dat}' u 1:2 w lp lw 2 t 'bottled (TPKT)', '' u 1:4 w lp lw 2 t 'redis'
set ylabel 'server CPU ns per delivery'
set yrange [0:*]
plot '{dat}' u 1:3 w lp lw 2 t 'bottled (TPKT)', '' u 1:5 w lp lw 2 t 'redis'
unset multiplot
"""
        r = subprocess.run(["gnuplot"], input=gp.encode(), capture_output=True, timeout=60)
        if r.returncode:
            r = subprocess.run(["gnuplot"], input=gp.replace("pngcairo", "png").encode(),
                               capture_output=True, timeout=60)
        if r.returncode:
            self.notes.append(f"gnuplot failed: {r.stderr.decode()[-200:]}")

    # ------------------------------------------------------------ report

    def mode(self):
        return "quick: one short run each" if self.quick else f"{self.reps} repetitions"

    def write(self, elapsed):
        def fmt(v):
            if v is None:
                return "—"
            a = abs(v)
            return (f"{v / 1e6:.2f} M" if a >= 1e6 else f"{v / 1e3:.0f} k" if a >= 1e4
                    else f"{v:.0f}" if a >= 100 else f"{v:.2f}" if a >= 1 else f"{v:.3f}")

        def fig(vals):
            if not vals:
                return "—"
            m = statistics.median(vals)
            if len(vals) == 1:
                return fmt(m)
            return f"{fmt(m)} ({fmt(min(vals))}–{fmt(max(vals))})"

        cpu = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        out = [
            "# bottle benchmarks" + (" (quick run)" if self.quick else ""),
            "",
            f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
            f"- machine: {os.cpu_count()} CPUs (nproc), {cpu}; kernel {platform.release()}",
            f"- mode: {self.mode()}; each figure is the median with its range (min–max); "
            "bottle and each peer run back to back in every repetition",
            f"- bottled: {self.bin / 'bottled'} (release build, -O2 -g); "
            f"redis {self.version(['redis-server', '--version'])}; "
            f"nginx {self.version(['nginx', '-v'])}; {self.version(['iperf3', '--version'])}",
            f"- total time {elapsed:.0f} s. How to read this: bench/README.md",
            "",
            "| workload | measure | unit | bottle | peer | peer's figure | bottle ÷ peer |",
            "|---|---|---|---|---|---|---|",
        ]
        for section, label, unit, better, bvals, peers in self.rows:
            if bvals is None:
                out.append(f"| {section} | {label} | | | | | |")
                continue
            if not peers:
                out.append(f"| {section} | {label} | {unit} | {fig(bvals)} | — | — | — |")
                continue
            for i, (pname, pvals) in enumerate(peers):
                ratio = "—"
                if pvals and statistics.median(pvals):
                    ratio = f"{statistics.median(bvals) / statistics.median(pvals):.2f}"
                    if better == "lower":
                        ratio += " (lower is better)"
                out.append(f"| {section if i == 0 else ''} | {label if i == 0 else '〃'} | "
                           f"{unit} | {fig(bvals) if i == 0 else '〃'} | {pname} | {fig(pvals)} "
                           f"| {ratio} |")
        if self.scaling:
            out += ["", f"Scaling curve: [{Path(self.a.plot).name}]({Path(self.a.plot).name})"]
        if self.notes:
            out += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        Path(self.a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(self.a.out).write_text("\n".join(out) + "\n")
        log(f"wrote {self.a.out}")
        print("\n".join(out))

    @staticmethod
    def version(argv):
        try:
            r = subprocess.run(argv, capture_output=True, timeout=10)
            t = (r.stdout + r.stderr).decode().split("\n")[0]
            m = re.search(r"(\d+\.\d+(\.\d+)?)", t)
            return (argv[0] + " " + m.group(1)) if argv[0] == "iperf3" and m else \
                (m.group(1) if m else "?")
        except OSError:
            return "?"


WORKLOADS = ["download", "upload", "fanout", "reqresp", "idle", "storm", "nonchat",
             "transfer", "scaling", "cluster", "tls"]


def tpkt_frame(payload):
    return b"\x03\x00" + (len(payload) + 4).to_bytes(2, "big") + payload


def cluster_crossing(port_a, port_b, timeout=10.0):
    """Why a message said on node a does not reach a member on node b within
    timeout, or None when it does. Said again every half second: node b may
    subscribe a moment after it listens."""
    end = time.monotonic() + timeout
    try:
        with socket.create_connection((HOST, port_b), timeout=timeout) as sb, \
                socket.create_connection((HOST, port_a), timeout=timeout) as sa:
            sb.sendall(tpkt_frame(b"ECHO in"))
            sa.sendall(tpkt_frame(b"ECHO in"))
            sb.settimeout(0.5)
            seen = b""
            while time.monotonic() < end:
                sa.sendall(tpkt_frame(b"SAY cluster-probe"))
                try:
                    chunk = sb.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    return "node b closed the probe's connection"
                seen += chunk
                if b"cluster-probe" in seen:
                    return None
    except OSError as e:
        return f"probe: {e}"
    return f"a message said on node a did not reach node b in {timeout:.0f} s"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--plot", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--tools", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=",".join(WORKLOADS))
    a = ap.parse_args()
    only = [w for w in a.only.split(",") if w]
    for w in only:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w}; known: {', '.join(WORKLOADS)}")

    def on_signal(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    b = Bench(a)
    t0 = time.monotonic()
    names = {"download": "1. download", "upload": "2. upload", "fanout": "3. fan-out",
             "reqresp": "4. request/response", "idle": "5. idle connections",
             "storm": "6. connect storm", "nonchat": "7. non-chatters",
             "transfer": "8. during transfer", "scaling": "9. scaling",
             "cluster": "10. cluster fan-out", "tls": "11. TLS download"}
    failed = 0
    try:
        for w in WORKLOADS:
            if w not in only:
                continue
            log(f"{names[w]} ...")
            t = time.monotonic()
            try:
                getattr(b, "w_" + w)()
            except (BenchError, OSError, ValueError, KeyError,
                    subprocess.SubprocessError) as e:
                b.fail(names[w], f"{type(e).__name__}: {e}" if not isinstance(e, BenchError)
                       else str(e))
                failed += 1
            finally:
                stop_all()
            log(f"{names[w]}: {time.monotonic() - t:.1f} s")
        b.write(time.monotonic() - t0)
    except KeyboardInterrupt:
        log("interrupted: stopping everything started")
        failed = 130
    finally:
        stop_all()
        shutil.rmtree(b.tmp, ignore_errors=True)
    sys.exit(1 if failed and failed != 130 else failed)


if __name__ == "__main__":
    main()
