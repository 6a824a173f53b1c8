"""telnet that behaves (docs/protocol.md, "Line framing"; issue 12 §2).

Real telnet (Debian's inetutils-telnet) in tmux: Ctrl-C and Ctrl-\\ send
IAC IP / IAC BRK and IAC DO TIMING-MARK, and telnet shows nothing more until
the server answers WILL TIMING-MARK (RFC 860); `open HOST -PORT` makes telnet
negotiate at connect, and every option is refused.  Then the same rules at
the byte level over a socket.  The screen offers no event to await, so the
tmux waits poll it with a deadline; sockets carry timeouts; tmux and telnet
are killed by PID at teardown (the tmux_sessions fixture).
"""

import re
import socket
import time

from harness.clients import TpktClient

IAC, DONT, DO, WONT, WILL = 255, 254, 253, 252, 251
IP, AO, BRK, EL, AYT = 244, 245, 243, 248, 246
TM = 6
WAIT = 10.0


def telnet(tmux_sessions, server):
    t = tmux_sessions(f"telnet 127.0.0.1 {server.port}")
    t.wait_text("you are Guest", timeout=WAIT)
    return t


def key(t, name):
    t.tmux(["send-keys", name])


def screen_has_line(t, text):
    return any(line.strip() == text for line in t.lines())


def test_ctrl_c_then_the_next_command_is_answered(server, tmux_sessions):
    t = telnet(tmux_sessions, server)
    t.type("ECHO before")
    t.wait_text("OK before", timeout=WAIT)
    t.keys("ECHO x")
    key(t, "C-c")
    t.type("ECHO y")
    t.wait(lambda lines: "OK y" in lines, "OK y after Ctrl-C", timeout=WAIT)
    # Once more: every timing mark is answered, not only the first.
    t.keys("ECHO z")
    key(t, "C-c")
    t.type("ECHO w")
    t.wait(lambda lines: "OK w" in lines, "OK w after a second Ctrl-C", timeout=WAIT)
    assert not screen_has_line(t, "OK x") and not screen_has_line(t, "OK z")


def test_ctrl_backslash_then_the_next_command_is_answered(server, tmux_sessions):
    t = telnet(tmux_sessions, server)
    t.keys("ECHO x")
    key(t, "C-\\")                                 # inetutils telnet: IAC BRK, DO TM
    t.type("ECHO y")
    t.wait(lambda lines: "OK y" in lines, "OK y after Ctrl-\\", timeout=WAIT)
    assert not screen_has_line(t, "OK x")


def test_negotiation_at_connect_is_refused_and_telnet_works(server, tmux_sessions):
    """`open HOST -PORT` makes telnet negotiate as with port 23; it is shown
    what it receives (`toggle options`)."""
    t = tmux_sessions("telnet")
    t.wait_text("telnet>", timeout=WAIT)
    t.type("toggle options")
    t.wait_text("Will show option processing", timeout=WAIT)
    t.type(f"open 127.0.0.1 -{server.port}")
    t.wait_text("you are Guest", timeout=WAIT)
    for answer in ["RCVD WONT SUPPRESS GO AHEAD", "RCVD DONT TERMINAL TYPE", "RCVD DONT NAWS",
                   "RCVD DONT LINEMODE", "RCVD DONT NEW-ENVIRON", "RCVD WONT STATUS"]:
        t.wait_text(answer, timeout=WAIT)
    t.type("ECHO hi")
    t.wait(lambda lines: "OK hi" in lines, "OK hi", timeout=WAIT)
    key(t, "C-c")
    t.wait_text("RCVD WILL TIMING MARK", timeout=WAIT)
    t.type("ECHO y")
    t.wait(lambda lines: "OK y" in lines, "OK y", timeout=WAIT)
    # Nothing was refused twice: no negotiation loop.
    assert sum("RCVD DONT NAWS" in line for line in t.lines()) == 1


def test_are_you_there(server, tmux_sessions):
    t = telnet(tmux_sessions, server)
    key(t, "C-]")                                  # telnet's escape: its prompt
    t.wait_text("telnet>", timeout=WAIT)
    t.type("send ayt")
    t.wait_text("[bottled: yes]", timeout=WAIT)
    t.type("ECHO still")
    t.wait(lambda lines: "OK still" in lines, "OK still", timeout=WAIT)


# --------------------------------------------------------------------------
# The same rules byte for byte
# --------------------------------------------------------------------------

def read_exact(sock, n, timeout=WAIT):
    deadline = time.monotonic() + timeout
    data = b""
    while len(data) < n:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(n - len(data))
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def greeted(connect, server):
    c = connect(server, nodelay=True)
    c.greeting()
    assert c.buf == b"", c.buf
    return c


def test_interrupts_drop_the_partial_line(server, connect):
    c = greeted(connect, server)
    for cmd in (IP, BRK, AO, EL):
        c.send(b"ECHO x" + bytes([IAC, cmd]) + b"ECHO y\r\n")
        assert read_exact(c.sock, 5) == b"OK y\n"
    # Split over segments, and a line already too long is given up as well.
    for part in (b"ECHO par", b"tial", bytes([IAC]), bytes([IP]), b"ECHO ok\n"):
        c.send(part)                               # TCP_NODELAY: a segment each
    assert read_exact(c.sock, 6) == b"OK ok\n"


def test_timing_mark_answered_in_order(server, connect):
    """After the replies to the commands before it, before the next reply."""
    c = greeted(connect, server)
    c.send(b"ECHO 1\nECHO 2\n" + bytes([IAC, IP, IAC, DO, TM]) + b"ECHO 3\n"
           + bytes([IAC, DO, TM]))
    want = b"OK 1\nOK 2\n" + bytes([IAC, WILL, TM]) + b"OK 3\n" + bytes([IAC, WILL, TM])
    assert read_exact(c.sock, len(want)) == want


def test_options_refused_once_refusals_unanswered(server, connect):
    c = greeted(connect, server)
    c.send(bytes([IAC, DO, 3, IAC, WILL, 31, IAC, WONT, 1, IAC, DONT, 3, IAC, WILL, TM])
           + b"ECHO done\n")
    want = bytes([IAC, WONT, 3, IAC, DONT, 31, IAC, DONT, TM]) + b"OK done\n"
    assert read_exact(c.sock, len(want)) == want
    c.send(bytes([IAC, AYT]) + b"ECHO x\n")
    want = b"[bottled: yes]\nOK x\n"
    assert read_exact(c.sock, len(want)) == want


def test_negotiation_as_first_bytes_greets_in_line_mode(server):
    """A telnet that negotiates speaks first: greeted at once, then answered."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
    try:
        t0 = time.monotonic()
        s.sendall(bytes([IAC, DO, 3, IAC, WILL, 24]))
        data = b""
        want_tail = bytes([IAC, WONT, 3, IAC, DONT, 24])
        while not data.endswith(want_tail):
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
        assert re.match(rb"OK bottled \S+ ready; .* you are Guest\d+\n$",
                        data[:-len(want_tail)]), data
        assert time.monotonic() - t0 < 5
    finally:
        s.close()


def test_tpkt_bytes_ff_are_not_telnet(server):
    """0xFF in a TPKT payload is data: no telnet answer ever on a TPKT link."""
    c = TpktClient(server.port, first=b"ECHO " + bytes([IAC, DO, TM, IAC, IP]))
    try:
        assert c.hello().encode("utf-8", "replace").startswith(b"OK ")
        assert c.received[1] == b"OK " + bytes([IAC, DO, TM, IAC, IP])
        assert c.cmd("ECHO next") == "OK next"
    finally:
        c.close()

