"""Numbers a client may get wrong on purpose: sizes, offsets and LIST's
``<from>`` that are negative, signed, non-numeric, 2^63, 2^64 or past the end;
TPKT frames of exactly 65535 bytes, of 4 bytes (an empty payload), and with a
length that lies in either direction.

Each case checks the exact ERR text (src/server/xfer.c, src/common/tpkt.c) and what
becomes of the connection afterwards: a refused TPKT command leaves it
usable; a refused line-mode UPLOAD closes it (its bytes may be on the way);
a broken TPKT stream closes it; a failed upload closes it, keeping a
resumable partial.  A well-behaved client connected before is served after.
"""

import hashlib
import os
import socket
import struct

import pytest

from harness.clients import Client, LineChatClient, TpktClient, check_bystander
from harness.env import wait_until
from harness.proc import proc_fd_count, wait_fd_count
from harness.protocol import tpkt_frame
from harness.server import wait_disconnect

SHA_EMPTY = hashlib.sha256(b"").hexdigest()
INVALID_SIZE = "ERR invalid size"
UPLOAD_USAGE = "ERR usage: UPLOAD <name> <size> [<sha256> <token>]"
DOWNLOAD_USAGE = "ERR usage: DOWNLOAD <name> [<offset> [<sha256>]]"
LIST_USAGE = "ERR usage: LIST [<from>]"
BEYOND = "ERR offset beyond the end of the file"
TWO_63 = str(2 ** 63)
TWO_64 = str(2 ** 64)
MAX_SIZE = str(2 ** 63 - 1)
TEN = b"0123456789"

BAD_NUMBERS = ["-1", "-0", "+5", "+0", "abc", "5a", "0x10", "1e3", "5.0", "٣",
               TWO_63, TWO_64, "99999999999999999999999"]
# Words the argument splitter itself refuses (longer than its buffer, or
# holding a NUL): refused like any other bad word, never skipped.
UNSPLITTABLE = ["5\x00", "1" * 100]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def arena(make_server):
    """Factory: arena(*server args) -> (server, bystander, fd baseline)."""
    made = []

    def start(*args):
        srv = make_server(*args)
        (srv.data_dir / "ten").write_bytes(TEN)
        bystander = LineChatClient(srv.port)
        bystander.sync("bystander")
        made.append(bystander)
        return srv, bystander, proc_fd_count(srv.pid)
    yield start
    for c in made:
        c.close()


def settle(srv, bystander, baseline, ends):
    """ends: {client: allowed reasons}.  Closes them, checks the logged
    reasons, the descriptors and the bystander."""
    for c in ends:
        c.close()
    for c, allowed in ends.items():
        reason = wait_disconnect(srv, c.local_port)
        assert reason in allowed, f"{c!r} ended as {reason!r}, expected {sorted(allowed)}"
    assert srv.running()
    wait_fd_count(srv, baseline)
    check_bystander(srv, bystander)


GONE = {"peer closed", "reset"}     # we closed it


def nothing_stored(srv):
    assert sorted(os.listdir(srv.data_dir)) == [".bottle", "ten"]
    assert os.listdir(srv.data_dir / ".bottle" / "partial") == []


# --------------------------------------------------------------------------
# UPLOAD <name> <size>
# --------------------------------------------------------------------------

def test_upload_bad_size_tpkt_keeps_the_connection(arena):
    srv, bystander, baseline = arena()
    c = TpktClient(srv.port, first=None)
    for word in BAD_NUMBERS + UNSPLITTABLE + [""]:
        assert c.cmd(f"UPLOAD f {word}".rstrip(" ")) == INVALID_SIZE, word
        assert c.cmd("ECHO after") == "OK after"
    nothing_stored(srv)
    settle(srv, bystander, baseline, {c: GONE})


def test_upload_bad_size_line_closes_the_connection(arena):
    srv, bystander, baseline = arena()
    for word in ["-1", "+5", "abc", TWO_63, TWO_64]:
        c = Client(srv.port)
        # The "bytes" right behind it must not be taken for commands either.
        c.send(f"UPLOAD f {word}\nECHO smuggled\n".encode())
        assert c.reply() == INVALID_SIZE, word
        assert c.expect_closed() == [], word
        assert wait_disconnect(srv, c.local_port) == "error"
        c.close()
    nothing_stored(srv)
    settle(srv, bystander, baseline, {})


def test_upload_size_edges(arena):
    srv, bystander, baseline = arena()
    c = TpktClient(srv.port, first=None)
    # 0: nothing to send, the reply follows at once.
    assert c.cmd("UPLOAD zero 0") == "OK 0"
    assert c.reply() == f"OK 0 {SHA_EMPTY}"
    # Leading zeros are still decimal.
    assert c.cmd("UPLOAD seven 007") == "OK 0"
    c.send_frame(b"1234567")
    assert c.reply() == f"OK 7 {sha256(b'1234567')}"
    assert (srv.data_dir / "seven").read_bytes() == b"1234567"
    # 2^63 - 1 is the largest size; an anonymous upload that ends early leaves nothing.
    assert c.cmd(f"UPLOAD huge {MAX_SIZE}") == "OK 0"
    c.send_frame(b"abc")
    mark = srv.log_mark()
    c.close()
    assert wait_disconnect(srv, c.local_port, since=mark) == "peer closed"
    wait_until(lambda: not os.listdir(srv.data_dir / ".bottle" / "partial"), 5,
               "the anonymous partial to be deleted")
    assert not (srv.data_dir / "huge").exists()
    settle(srv, bystander, baseline, {})


def test_upload_over_max_file_size(arena):
    srv, bystander, baseline = arena("--max-file-size", MAX_SIZE)
    c = TpktClient(srv.port, first=None)
    assert c.cmd(f"UPLOAD f {TWO_63}") == INVALID_SIZE      # the size is checked first
    assert c.cmd(f"UPLOAD f {MAX_SIZE}") == "OK 0"
    settle(srv, bystander, baseline, {c: GONE})
    srv2, bystander2, baseline2 = arena("--max-file-size", "9")
    c = TpktClient(srv2.port, first=None)
    assert c.cmd("UPLOAD f 10") == "ERR file too large (limit 9 bytes)"
    assert c.cmd(f"UPLOAD f {MAX_SIZE}") == "ERR file too large (limit 9 bytes)"
    assert c.cmd("ECHO after") == "OK after"
    settle(srv2, bystander2, baseline2, {c: GONE})


BAD_DIGEST_OR_TOKEN = [
    "abc",                                   # not a digest
    "A" * 64,                                # upper-case hex
    "0" * 63,                                # one digit short
    "0" * 64,                                # digest without a token
    "0" * 64 + " short",                     # token below 8 characters
    "0" * 64 + " " + "t" * 65,               # token above 64 characters
    "0" * 64 + " tok/en/../x",               # a token is no path
    "0" * 64 + " tokentoken extra",          # a word too many
]


def test_upload_bad_digest_or_token(arena):
    srv, bystander, baseline = arena()
    c = TpktClient(srv.port, first=None)
    for rest in BAD_DIGEST_OR_TOKEN:
        assert c.cmd(f"UPLOAD f 5 {rest}") == UPLOAD_USAGE, rest
        assert c.cmd("ECHO after") == "OK after"
    nothing_stored(srv)
    settle(srv, bystander, baseline, {c: GONE})


# --------------------------------------------------------------------------
# DOWNLOAD <name> [<offset> [<sha256>]] and LIST [<from>]
# --------------------------------------------------------------------------

@pytest.mark.parametrize("framing", ["tpkt", "line"])
def test_download_bad_offsets_keep_the_connection(arena, framing):
    srv, bystander, baseline = arena()
    c = TpktClient(srv.port, first=None) if framing == "tpkt" else Client(srv.port)
    for word in BAD_NUMBERS:
        assert c.cmd(f"DOWNLOAD ten {word}") == DOWNLOAD_USAGE, word
        # Refused before the file is looked at.
        assert c.cmd(f"DOWNLOAD missing {word}") == DOWNLOAD_USAGE, word
    for word in ["11", "9223372036854775807"]:
        assert c.cmd(f"DOWNLOAD ten {word}") == BEYOND, word
    assert c.cmd(f"DOWNLOAD ten 1 {'A' * 64}") == DOWNLOAD_USAGE
    assert c.cmd(f"DOWNLOAD ten 1 {SHA_EMPTY} extra") == DOWNLOAD_USAGE
    assert c.cmd("ECHO after") == "OK after"
    settle(srv, bystander, baseline, {c: GONE})


def test_unsplittable_words_are_refused_not_skipped(arena):
    """An offset or digest word the splitter can't take (a NUL in it, or too
    long for its buffer) must be refused like any other bad word.  Skipping
    it instead downloads from 0, or drops an upload's digest and token: the
    bytes are published unverified and nothing is resumable."""
    srv, bystander, baseline = arena()
    c = TpktClient(srv.port, first=None)
    problems = []
    for cmd, want in [
        (b"DOWNLOAD ten 5\x00", DOWNLOAD_USAGE),
        (b"DOWNLOAD ten " + b"1" * 100, DOWNLOAD_USAGE),
        (b"DOWNLOAD ten 4 " + b"a" * 65, DOWNLOAD_USAGE),
        (b"UPLOAD f 5 " + b"a" * 65 + b" tokentoken", UPLOAD_USAGE),
        (b"UPLOAD f 5 " + b"a" * 64 + b"\x00 tokentoken", UPLOAD_USAGE),
    ]:
        got = c.cmd(cmd)
        if got != want:
            problems.append(f"{cmd[:30]!r}... got {got[:40]!r}, want {want!r}")
            # Leave the connection in a known state for the next command.
            if got.startswith("OK 10 "):
                size, offset = map(int, got.split()[1:3])
                if offset < size:
                    c.frame()
            elif got == "OK 0":
                c.send_frame(b"12345")
                c.reply()
    assert not problems, "\n".join(problems)
    assert c.cmd("ECHO after") == "OK after"
    nothing_stored(srv)
    settle(srv, bystander, baseline, {c: GONE})


def test_download_at_and_near_the_end(arena):
    srv, bystander, baseline = arena()
    sha = sha256(TEN)
    c = TpktClient(srv.port, first=None)
    # At the end: the reply, no data frame, and the next command is answered.
    assert c.cmd("DOWNLOAD ten 10") == f"OK 10 10 {sha}"
    assert c.cmd("ECHO next") == "OK next"
    assert c.cmd("DOWNLOAD ten 0009") == f"OK 10 9 {sha}"
    assert c.frame() == b"9"
    # A digest of another file: the offset is ignored, the file comes from 0.
    assert c.cmd(f"DOWNLOAD ten 4 {SHA_EMPTY}") == f"OK 10 0 {sha}"
    assert c.frame() == TEN
    assert c.cmd(f"DOWNLOAD ten 4 {sha}") == f"OK 10 4 {sha}"
    assert c.frame() == TEN[4:]
    assert c.cmd("ECHO after") == "OK after"
    # Line mode at the end: the reply, no byte, and the connection ends.
    lc = Client(srv.port)
    lc.send(b"DOWNLOAD ten 10\n")
    assert lc.reply() == f"OK 10 10 {sha}"
    assert lc.expect_closed() == []
    assert wait_disconnect(srv, lc.local_port) == "transfer done"
    settle(srv, bystander, baseline, {c: GONE})


def test_list_from(arena):
    srv, bystander, baseline = arena()
    c = TpktClient(srv.port, first=None)
    for word in ["-1", "+1", "abc", TWO_63, TWO_64, "1" * 30, "1 2"]:
        assert c.cmd(f"LIST {word}") == LIST_USAGE, word
    assert c.cmd("LIST") == "OK 1\n10 ten"
    assert c.cmd("LIST 0") == "OK 1\n10 ten"
    assert c.cmd("LIST 1") == "OK 1"                 # past the last: the count only
    assert c.cmd(f"LIST {MAX_SIZE}") == "OK 1"
    settle(srv, bystander, baseline, {c: GONE})


# --------------------------------------------------------------------------
# TPKT lengths
# --------------------------------------------------------------------------

def test_frame_of_exactly_65535_bytes(arena):
    srv, bystander, baseline = arena()
    c = TpktClient(srv.port, first=None)
    arg = os.urandom(65531 - len(b"ECHO ")).replace(b"\n", b"n")
    frame = tpkt_frame(b"ECHO " + arg)
    assert len(frame) == 65535 and frame[2:4] == b"\xff\xff"
    c.send_raw(frame)
    assert c.reply_raw() == b"OK " + arg
    # As upload data: one frame carrying 65531 bytes.
    data = os.urandom(65531)
    assert c.cmd(f"UPLOAD full {len(data)}") == "OK 0"
    c.send_raw(tpkt_frame(data))
    assert c.reply() == f"OK 65531 {sha256(data)}"
    assert (srv.data_dir / "full").read_bytes() == data
    settle(srv, bystander, baseline, {c: GONE})


def test_max_frame_is_inclusive(arena):
    srv, bystander, baseline = arena("--max-frame", "100")
    c = TpktClient(srv.port, first=None)
    arg = b"x" * (100 - 4 - len(b"ECHO "))
    assert c.cmd_raw(b"ECHO " + arg) == b"OK " + arg          # a 100-byte frame
    c.send_frame(b"ECHO " + arg + b"y")                        # 101 bytes
    assert c.expect_closed() == [b"ERR TPKT frame too long"]
    assert wait_disconnect(srv, c.local_port) == "protocol error"
    settle(srv, bystander, baseline, {})


@pytest.mark.parametrize("length", [0, 3])
def test_length_below_the_header(arena, length):
    srv, bystander, baseline = arena()
    c = TpktClient(srv.port, first=None)
    c.send_raw(struct.pack(">BBH", 3, 0, length) + b"ECHO x")
    got = c.expect_closed()
    assert got[1:] == [b"ERR bad TPKT length"], got
    assert wait_disconnect(srv, c.local_port) == "protocol error"
    settle(srv, bystander, baseline, {})


def test_empty_frames(arena):
    srv, bystander, baseline = arena()
    c = TpktClient(srv.port, first=None)
    c.send_raw(tpkt_frame(b""))
    assert c.reply() == "ERR empty command"
    assert c.cmd("ECHO after") == "OK after"
    # Inside an upload an empty data frame is a failure: ERR, then closed,
    # and a partial with a token stays for resume.
    data = b"0123456789"
    token = "adv-empty-0001"
    assert c.cmd(f"UPLOAD e {len(data)} {sha256(data)} {token}") == "OK 0"
    c.send_raw(tpkt_frame(data[:4]) + tpkt_frame(b""))
    assert c.expect_closed() == [b"ERR empty data frame"]
    assert wait_disconnect(srv, c.local_port) == "error"
    r = TpktClient(srv.port, first=None)
    assert r.cmd(f"UPLOAD e {len(data)} {sha256(data)} {token}") == "OK 4"
    r.send_frame(data[4:])
    assert r.reply() == f"OK 10 {sha256(data)}"
    settle(srv, bystander, baseline, {r: GONE})


def test_data_frame_longer_than_the_rest_of_the_upload(arena):
    srv, bystander, baseline = arena()
    c = TpktClient(srv.port, first=None)
    assert c.cmd("UPLOAD over 3") == "OK 0"
    c.send_frame(b"abcd")
    assert c.expect_closed() == [b"ERR more data than the upload's size"]
    assert wait_disconnect(srv, c.local_port) == "error"
    nothing_stored(srv)
    settle(srv, bystander, baseline, {})


@pytest.mark.parametrize("how", ["close", "reset"])
def test_length_that_promises_more_than_comes(arena, how):
    """The header says 1000, 10 bytes follow, then the client goes: nothing
    of that frame is executed or stored.  In an upload with a token the
    complete frames before it are kept, and resuming starts after them."""
    srv, bystander, baseline = arena()
    c = TpktClient(srv.port, first=None)
    c.send_raw(struct.pack(">BBH", 3, 0, 1000) + b"ECHO 12345")
    c.greeting()
    if how == "reset":
        c.reset()
    else:
        c.sock.shutdown(socket.SHUT_WR)
        assert c.expect_closed() == []
    assert wait_disconnect(srv, c.local_port) == ("reset" if how == "reset" else "peer closed")

    data = os.urandom(3000)
    token = f"adv-lie-{how}-01"
    u = TpktClient(srv.port, first=None)
    assert u.cmd(f"UPLOAD lie {len(data)} {sha256(data)} {token}") == "OK 0"
    u.send_raw(tpkt_frame(data[:1000]) + tpkt_frame(data[1000:2000])
               + struct.pack(">BBH", 3, 0, 4 + 1000) + data[2000:2500])
    part = srv.data_dir / ".bottle" / "partial" / f"{token}.data"
    wait_until(lambda: part.exists() and part.stat().st_size == 2000, 5,
               "the two whole frames to reach the partial")
    mark = srv.log_mark()
    if how == "reset":
        u.reset()
    else:
        u.close()
    assert wait_disconnect(srv, u.local_port, since=mark) in {"reset", "peer closed"}
    srv.wait_log(r"upload lie from .* interrupted at 2000 of 3000 bytes; partial kept",
                 since=mark)
    assert part.stat().st_size == 2000
    r = TpktClient(srv.port, first=None)
    assert r.cmd(f"UPLOAD lie {len(data)} {sha256(data)} {token}") == "OK 2000"
    r.send_frame(data[2000:])
    assert r.reply() == f"OK 3000 {sha256(data)}"
    assert (srv.data_dir / "lie").read_bytes() == data
    settle(srv, bystander, baseline, {r: GONE})


def test_length_that_promises_less_than_comes(arena):
    """The header says 8 (payload "ECHO"), the data goes on: the rest is read
    as the next header, whose version byte is wrong."""
    srv, bystander, baseline = arena()
    c = TpktClient(srv.port, first=None)
    c.send_raw(struct.pack(">BBH", 3, 0, 8) + b"ECHO hello")
    got = c.expect_closed()
    assert got[1:] == [b"OK", b"ERR bad TPKT version"], got
    assert wait_disconnect(srv, c.local_port) == "protocol error"
    settle(srv, bystander, baseline, {})
