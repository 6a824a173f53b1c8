"""Hostile input bounces off: random bytes in both framings, commands with
garbage arguments, and abrupt resets never crash or wedge the server. Under
the sanitizer build (make test's second run) any memory error fails the test
through the harness's report check."""
import random
import socket
import struct

from harness.clients import Client, TpktClient

COMMANDS = [b"ECHO", b"TIME", b"HELP", b"SAY", b"NICK", b"WHO", b"LIST",
            b"UPLOAD", b"DOWNLOAD", b"QUIT"]


def random_command(rng):
    verb = rng.choice(COMMANDS + [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 8)))])
    arg = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
    return verb + b" " + arg if rng.random() < 0.8 else verb


def test_random_bytes_in_both_framings_leave_the_server_serving(server):
    rng = random.Random(20261123)
    for i in range(150):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        first = b"\x03" if i % 2 else b""
        blob = first + bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096)))
        try:
            s.sendall(blob)
        except OSError:
            pass
        if i % 3 == 0:      # leave with a reset rather than a close
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    with Client(server.port) as c:
        assert c.cmd("ECHO still here") == "OK still here"


def test_random_commands_get_replies_in_both_framings(server):
    rng = random.Random(7)
    line = Client(server.port)
    tpkt = TpktClient(server.port)
    tpkt.hello()
    for _ in range(300):
        cmd = random_command(rng)
        if cmd.startswith((b"QUIT", b"UPLOAD", b"DOWNLOAD")):
            continue        # they end or take over the connection by design
        tpkt.send_frame(cmd)
        assert tpkt.reply().split(" ", 1)[0] in ("OK", "ERR")
        text = cmd.replace(b"\n", b" ").replace(b"\r", b" ").replace(b"\xff", b" ")
        if not text:
            continue        # an empty line is no command: no reply
        line.send(text + b"\n")
        assert line.reply().split(" ", 1)[0] in ("OK", "ERR")
    assert line.cmd("ECHO done") == "OK done"
