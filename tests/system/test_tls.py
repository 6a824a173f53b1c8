"""TLS (docs/security.md, "TLS"): bottled's --tls-listen with a self-signed
certificate made once and reused, or --tls-cert/--tls-key; Python's ssl module
as an independent client in both framings; chat between a TLS bottle, a
plaintext bottle and openssl s_client; put/get over TLS, resumed after a kill
-9 of the client and across a server restart; the client's pinning in
known_servers (first use, then a changed certificate refused with the file and
line); and a flood of handshakes that never finish, cut at the timeout while
another client's ECHO stays quick.

Run with:  pytest-3 -q tests/system/test_tls.py   (BOTTLED / BOTTLE: other builds)

Everything talks to 127.0.0.1. HOME and XDG_STATE_HOME are each test's own
(user_env), so known_servers starts empty. Every wait is bounded; processes
started here are stopped by PID.
"""

import hashlib
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import time
from pathlib import Path

import pytest

from harness.clients import Client, LineChatClient, TpktClient, _SocketPeer
from harness.env import BOTTLE, wait_until
from harness.files import MiB, sha256_file, write_random
from harness.server import run_bottled
from harness.xfer import line_read_to_eof, upload_tpkt

FP_RE = r"fingerprint (SHA256:[0-9A-F:]{95})"
WAIT = 10


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def insecure_context():
    """A client context that takes any certificate: the tests look at the
    fingerprint themselves."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class TlsLine(LineChatClient):
    """The harness's line client inside TLS (Python's ssl module)."""

    @staticmethod
    def _new_socket(host, timeout, nodelay, rcvbuf):
        return insecure_context().wrap_socket(
            _SocketPeer._new_socket(host, timeout, nodelay, rcvbuf))


class TlsTpkt(TpktClient):
    """The harness's TPKT client inside TLS."""

    @staticmethod
    def _new_socket(host, timeout, nodelay, rcvbuf):
        return insecure_context().wrap_socket(
            _SocketPeer._new_socket(host, timeout, nodelay, rcvbuf))


def tls_server(make_server, *args, **kw):
    """bottled with a plain and a TLS listener; .tls_port set."""
    srv = make_server("--tls-listen", "127.0.0.1:0", *args, **kw)
    m = srv.wait_log(r"listening on 127\.0\.0\.1:(\d+) for TLS")
    srv.tls_port = int(m.group(1))
    return srv


def cert_fingerprint(path):
    der = ssl.PEM_cert_to_DER_cert(Path(path).read_text())
    digest = hashlib.sha256(der).hexdigest().upper()
    return "SHA256:" + ":".join(digest[i:i + 2] for i in range(0, 64, 2))


def run_bottle(args, env, cwd, timeout=30):
    return subprocess.run([BOTTLE, *[str(a) for a in args]], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout, env=env, cwd=cwd,
                          text=True)


def known_servers(env):
    return Path(env["HOME"]) / ".config" / "bottle" / "known_servers"


def need_openssl():
    if not shutil.which("openssl"):
        pytest.skip("the openssl command is not installed")


# --------------------------------------------------------------------------
# The certificate
# --------------------------------------------------------------------------

def test_self_signed_made_once_logged_and_reused(make_server, tmp_path):
    srv = tls_server(make_server)
    tls_dir = Path(srv.data_dir) / ".bottle" / "tls"
    m = srv.wait_log(r"TLS certificate .* \(self-signed, made now\), " + FP_RE)
    assert m.group(1) == cert_fingerprint(tls_dir / "cert.pem")
    assert stat.S_IMODE((tls_dir / "key.pem").stat().st_mode) == 0o600
    c = TlsLine(srv.tls_port)
    try:
        der = c.sock.getpeercert(binary_form=True)
        digest = hashlib.sha256(der).hexdigest().upper()
        assert m.group(1).replace(":", "").endswith(digest)
    finally:
        c.close()
    srv.stop()

    again = tls_server(make_server, data_dir=srv.data_dir)
    m2 = again.wait_log(r"TLS certificate .* \(self-signed, made before\), " + FP_RE)
    assert m2.group(1) == m.group(1)


def make_cert(tmp_path, name="srv"):
    need_openssl()
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=bottle-test", "-addext", "subjectAltName=IP:127.0.0.1",
         "-days", "2", "-keyout", str(key), "-out", str(cert)],
        capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return cert, key


def test_given_cert_and_key_verify_with_tls_ca(make_server, tmp_path, user_env):
    cert, key = make_cert(tmp_path)
    srv = tls_server(make_server, "--tls-cert", cert, "--tls-key", key)
    m = srv.wait_log(r"TLS certificate .* \(given\), " + FP_RE)
    assert m.group(1) == cert_fingerprint(cert)
    assert not (Path(srv.data_dir) / ".bottle" / "tls").exists()

    # Python verifying against the certificate, host name (IP) included.
    ctx = ssl.create_default_context(cafile=str(cert))
    with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=WAIT) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"ECHO verified\r\n")
            got = b""
            while b"OK verified" not in got:
                chunk = s.recv(4096)
                assert chunk, got
                got += chunk

    # bottle with --tls-ca: verified, so nothing is pinned.
    r = run_bottle(["--tls-ca", cert, "-c", "ECHO ca", f"127.0.0.1:{srv.tls_port}"],
                   user_env, tmp_path)
    assert r.returncode == 0 and r.stdout == "OK ca\n", r
    assert not known_servers(user_env).exists()
    # ... and a name the certificate does not carry is refused, not pinned.
    r = run_bottle(["--tls-ca", cert, "-c", "ECHO ca", f"localhost:{srv.tls_port}"],
                   user_env, tmp_path)
    assert r.returncode == 3 and "does not verify" in r.stderr, r
    assert not known_servers(user_env).exists()


def test_cert_without_key_is_a_usage_error(tmp_path):
    cert, _ = make_cert(tmp_path)
    r = run_bottled("--tls-listen", "127.0.0.1:0", "--tls-cert", cert, "-d", tmp_path / "d")
    assert r.returncode == 2 and b"--tls-key" in r.stderr, r


# --------------------------------------------------------------------------
# The protocol inside TLS
# --------------------------------------------------------------------------

def test_python_ssl_speaks_both_framings(make_server, connect_as):
    srv = tls_server(make_server)
    line = connect_as(TlsLine, srv.tls_port)
    assert line.greeting().startswith("OK bottled")
    assert line.cmd("ECHO over tls") == "OK over tls"
    assert line.cmd("NICK Lina") == "OK Lina"

    tp = connect_as(TlsTpkt, srv.tls_port, first=b"NICK Tom")
    assert tp.hello() == "OK Tom"
    assert tp.cmd(b"ECHO framed") == "OK framed"
    assert line.cmd("SAY hello tom") == "OK"
    tp.wait_event("MSG Lina hello tom")
    assert tp.cmd(b"SAY hello lina") == "OK"
    line.wait_event("MSG Tom hello lina")
    # A big reply crosses many records; UPLOAD/DOWNLOAD of a small file in TPKT.
    data = os.urandom(300_000)
    sha = hashlib.sha256(data).hexdigest()
    first, final = upload_tpkt(tp, "t.bin", data)
    assert first == "OK 0" and final.startswith("OK"), (first, final)
    assert tp.cmd(b"DOWNLOAD t.bin").startswith(f"OK {len(data)}")
    assert tp.recv_data(len(data))[0] == sha
    # Line mode, as nc does it: the bytes right behind the command, ...
    up = connect_as(TlsLine, srv.tls_port)
    up.send(f"UPLOAD l.bin {len(data)}\n".encode() + data)
    assert up.reply() == "OK 0"
    assert up.reply(timeout=10).startswith("OK")
    assert (Path(srv.data_dir) / "l.bin").read_bytes() == data
    # ... and a download: the reply line, then the raw bytes until the server closes.
    dl = connect_as(TlsLine, srv.tls_port)
    dl.send("DOWNLOAD t.bin\n")
    assert dl.reply().startswith(f"OK {len(data)}")
    h = hashlib.sha256()
    assert line_read_to_eof(dl, 10, h) == len(data) and h.hexdigest() == sha


def test_plaintext_on_the_tls_port_is_told_and_closed(make_server):
    srv = tls_server(make_server)
    mark = srv.log_mark()
    c = Client(srv.tls_port)
    try:
        c.send("HELP\r\n")
        assert c.line() == "ERR this port speaks TLS: use bottle --tls or openssl s_client"
        c.expect_closed()
    finally:
        c.close()
    srv.wait_log(r"plaintext on a TLS port, closing", since=mark)
    # A TLS record that is not a handshake's is a failed handshake.
    c = Client(srv.tls_port)
    try:
        c.send(b"\x16\x03\x01\x00\x05hello")
        c.expect_closed()
    finally:
        c.close()
    srv.wait_log(r"TLS handshake failed", since=mark)


def test_chat_tls_bottle_plain_bottle_and_s_client(make_server, tmp_path, user_env,
                                                   line_process):
    need_openssl()
    srv = tls_server(make_server)
    tls_addr, plain_addr = f"127.0.0.1:{srv.tls_port}", f"127.0.0.1:{srv.port}"
    carol = line_process(["openssl", "s_client", "-quiet", "-connect", tls_addr])
    carol.expect(r"^OK bottled .* you are Guest\d+")
    carol.say("NICK Carol")
    carol.expect(r"^OK Carol$")
    alice = line_process([BOTTLE, "--tls", "--nick", "Alice", tls_addr], env=user_env,
                         cwd=tmp_path)
    carol.expect(r"^NICK Guest\d+ Alice$")
    bob = line_process([BOTTLE, "--nick", "Bob", plain_addr], env=user_env, cwd=tmp_path)
    carol.expect(r"^NICK Guest\d+ Bob$")

    alice.say("hello from tls")
    bob.expect(r"^Alice: hello from tls$")
    carol.expect(r"^MSG Alice hello from tls$")
    bob.say("hi from plain")
    alice.expect(r"^Bob: hi from plain$")
    carol.expect(r"^MSG Bob hi from plain$")
    carol.say("SAY and from s_client")
    alice.expect(r"^Carol: and from s_client$")
    bob.expect(r"^Carol: and from s_client$")


# --------------------------------------------------------------------------
# Files over TLS
# --------------------------------------------------------------------------

def partial_size(data_dir):
    sizes = [p.stat().st_size for p in (Path(data_dir) / ".bottle" / "partial").glob("*.data")]
    return max(sizes, default=0)


def final_resumed(stdout):
    return re.search(r"resumed at", stdout) is not None


def test_put_get_resume_after_kill_9_and_every_mode(make_server, tmp_path, user_env):
    srv = tls_server(make_server)
    addr = f"127.0.0.1:{srv.tls_port}"
    size = 4 * MiB
    sha = write_random(tmp_path / "f.bin", size)

    b = subprocess.Popen([BOTTLE, "--tls", "put", "f.bin", "--limit-rate", "1M", addr],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=user_env, cwd=tmp_path)
    try:
        wait_until(lambda: partial_size(srv.data_dir) >= 256 * 1024, 10,
                   "the server's partial to grow")
    finally:
        os.kill(b.pid, signal.SIGKILL)
        b.wait(timeout=5)
    r = run_bottle(["--tls", "put", "f.bin", addr], user_env, tmp_path)
    assert r.returncode == 0 and final_resumed(r.stdout), r
    assert sha256_file(Path(srv.data_dir) / "f.bin") == sha

    out, part = tmp_path / "got.bin", tmp_path / "got.bin.part"
    b = subprocess.Popen([BOTTLE, "--tls", "get", "f.bin", "-o", out, "--limit-rate", "1M",
                          addr], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=user_env, cwd=tmp_path)
    try:
        wait_until(lambda: part.exists() and part.stat().st_size >= 256 * 1024, 10,
                   "the .part to grow")
    finally:
        os.kill(b.pid, signal.SIGKILL)
        b.wait(timeout=5)
    env = dict(user_env, BOTTLE_TLS="1")  # the environment's switch this time
    r = run_bottle(["get", "f.bin", "-o", out, addr], env, tmp_path)
    assert r.returncode == 0 and final_resumed(r.stdout), r
    assert sha256_file(out) == sha

    # ls, mv, rm and -c over TLS too.
    r = run_bottle(["--tls", "ls", addr], user_env, tmp_path)
    assert r.returncode == 0 and "f.bin" in r.stdout, r
    assert run_bottle(["--tls", "mv", "f.bin", "g.bin", addr], user_env,
                      tmp_path).returncode == 0
    assert run_bottle(["--tls", "rm", "g.bin", addr], user_env, tmp_path).returncode == 0
    r = run_bottle(["--tls", "-c", "LIST", addr], user_env, tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("OK 0"), r


def test_upload_recovers_across_a_server_restart(make_server, tmp_path, user_env):
    srv = tls_server(make_server)
    port = srv.tls_port
    sha = write_random(tmp_path / "f.bin", 3 * MiB)
    b = subprocess.Popen([BOTTLE, "--tls", "put", "f.bin", "--limit-rate", "1M",
                          "--retry-for", "30", f"127.0.0.1:{port}"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=user_env, cwd=tmp_path, text=True)
    try:
        wait_until(lambda: partial_size(srv.data_dir) >= 256 * 1024, 10,
                   "the server's partial to grow")
        srv.signal(signal.SIGKILL)
        assert srv.wait(timeout=5) == -signal.SIGKILL
        again = make_server("--tls-listen", f"127.0.0.1:{port}", data_dir=srv.data_dir)
        again.wait_log(r"for TLS")
        out, err = b.communicate(timeout=40)
    finally:
        if b.poll() is None:
            os.kill(b.pid, signal.SIGKILL)
            b.wait(timeout=5)
    assert b.returncode == 0, err
    assert sha256_file(Path(srv.data_dir) / "f.bin") == sha


# --------------------------------------------------------------------------
# Pinning
# --------------------------------------------------------------------------

def test_first_use_pins_then_a_changed_certificate_is_refused(make_server, tmp_path,
                                                              user_env):
    srv = tls_server(make_server)
    fp = srv.wait_log(FP_RE).group(1)
    addr = f"127.0.0.1:{srv.tls_port}"
    path = known_servers(user_env)

    r = run_bottle(["--tls", "-c", "ECHO one", addr], user_env, tmp_path)
    assert r.returncode == 0 and r.stdout == "OK one\n", r
    assert fp in r.stderr and str(path) in r.stderr and "line 1" in r.stderr, r.stderr
    assert path.read_text() == f"{addr} {fp}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    r = run_bottle(["--tls", "-c", "ECHO two", addr], user_env, tmp_path)
    assert r.returncode == 0 and r.stdout == "OK two\n" and r.stderr == "", r

    # Another certificate for the same address: refused, naming file and line.
    other = "SHA256:" + ":".join(["00"] * 32)
    path.write_text(f"# pinned by hand\n{addr} {other}\n")
    for args in (["-c", "ECHO three"], ["get", "x.bin"]):
        t0 = time.monotonic()
        r = run_bottle(["--tls", *args, addr], user_env, tmp_path)
        assert r.returncode == 3, r
        assert "CHANGED" in r.stderr and fp in r.stderr, r.stderr
        assert f"remove line 2 of {path}" in r.stderr, r.stderr
        assert time.monotonic() - t0 < 5, "a refused certificate is not retried"
    assert path.read_text() == f"# pinned by hand\n{addr} {other}\n"


def test_known_servers_follows_xdg_config_home(make_server, tmp_path, user_env):
    srv = tls_server(make_server)
    env = dict(user_env, XDG_CONFIG_HOME=str(tmp_path / "conf"))
    r = run_bottle(["--tls", "-c", "ECHO x", f"127.0.0.1:{srv.tls_port}"], env, tmp_path)
    assert r.returncode == 0, r
    assert (tmp_path / "conf" / "bottle" / "known_servers").exists()
    assert not known_servers(user_env).exists()


# --------------------------------------------------------------------------
# Handshakes that never finish
# --------------------------------------------------------------------------

def test_handshake_flood_is_cut_and_does_not_stall_others(make_server, connect_as):
    srv = tls_server(make_server, "--tls-handshake-timeout", "2")
    mark = srv.log_mark()
    idle = []
    try:
        for i in range(500):
            s = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=WAIT)
            if i % 2:
                s.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello
            idle.append(s)
        c = connect_as(TlsLine, srv.tls_port)
        c.greeting()
        for _ in range(5):
            t0 = time.monotonic()
            assert c.cmd("ECHO alive") == "OK alive"
            assert time.monotonic() - t0 < 0.5
        srv.wait_logs(r"no TLS handshake within 2000 ms", 500, timeout=15, since=mark)
        for s in idle[:20] + idle[-20:]:
            s.settimeout(WAIT)
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
        assert c.cmd("ECHO still") == "OK still"
    finally:
        for s in idle:
            s.close()


# --------------------------------------------------------------------------
# The README's s_client session
# --------------------------------------------------------------------------

def test_readme_s_client_session_is_what_the_server_prints(make_server):
    need_openssl()
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    marker = "    $ openssl s_client -quiet -connect localhost:4433"
    block = []
    for line in readme[readme.index(marker):].splitlines():
        if not line.startswith("    "):
            break
        block.append(line[4:])
    sent = [l for l in block[1:] if not re.match(r"(OK|ERR)\b", l)]
    expected = [l for l in block[1:] if re.match(r"(OK|ERR)\b", l)]
    assert "QUIT" in sent and len(expected) == len(sent) + 1

    srv = tls_server(make_server)
    r = subprocess.run(["openssl", "s_client", "-quiet", "-connect",
                        f"127.0.0.1:{srv.tls_port}"],
                       input=("\n".join(sent) + "\n").encode(), capture_output=True,
                       timeout=WAIT)
    got = r.stdout.decode().splitlines()
    assert len(got) == len(expected), r
    for want, have in zip(expected, got):  # the guest number changes from run to run
        assert re.fullmatch(re.escape(want).replace("Guest1", r"Guest\d+"), have), (want, have)


# --------------------------------------------------------------------------
# The interactive chat reconnects over TLS
# --------------------------------------------------------------------------

def test_chat_on_a_terminal_comes_back_over_tls(make_server, tmux_sessions, tmp_path):
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    srv = tls_server(make_server)
    port = srv.tls_port
    home = tmp_path / "home"
    t = tmux_sessions(f"env -u BOTTLE_SERVER HOME={shlex.quote(str(home))} "
                      f"{shlex.quote(BOTTLE)} --tls --retry-for 30 127.0.0.1:{port}; "
                      f"echo exit=$?; sleep 60")
    t.wait_text("Trusting it on first use")
    t.wait_text("connected to")
    t.type("/nick Alice")
    t.wait_text("you are now Alice")

    srv.signal(signal.SIGKILL)
    assert srv.wait(timeout=5) == -signal.SIGKILL
    t.wait_text("reconnecting...")
    again = make_server("--tls-listen", f"127.0.0.1:{port}", data_dir=srv.data_dir)
    again.wait_log(r"for TLS")
    t.wait(lambda ls: any(re.search(r"\* back \(away \d+\.\d s\) as Alice$", l) for l in ls),
           "the back line", timeout=30)
    raw = TlsTpkt(port)
    try:
        raw.hello()
        t.type("hello after the restart")
        raw.wait_event("MSG Alice hello after the restart")
        t.type("/quit")
        t.wait_text("exit=0")
    finally:
        raw.close()
