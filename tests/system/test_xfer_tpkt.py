"""File transfer over TPKT (docs/protocol.md, section 5): LIST in one frame and
in pages, an upload's data frames pipelined with commands, data beyond the
size, a half-close after the last frame, and two uploads of one name at once.

Everything talks to 127.0.0.1 only.
"""

import os

import pytest

from harness.clients import ConnectionClosed
from harness.files import MiB, sha256_bytes
from harness.protocol import tpkt_frame
from harness.xfer import partial_dir, upload_tpkt, visible_files

pytestmark = pytest.mark.usefixtures("drop_big_files")


def test_list_over_tpkt_is_one_frame(server, tpkt):
    c = tpkt(server)
    assert c.cmd("LIST") == "OK 0"
    upload_tpkt(c, "b", b"12345")
    upload_tpkt(c, '"a b"', b"")
    assert c.cmd("LIST") == "OK 2\n0 a b\n5 b"


def test_list_pages_a_folder_too_big_for_one_frame(server, tpkt):
    """Each LIST reply fits one TPKT frame; LIST <from> gets the next page."""
    names = [f"{i:04d}-" + "n" * 200 for i in range(600)]      # ~125 KB of lines
    for name in names:
        (server.data_dir / name).write_bytes(b"x")
    c = tpkt(server)
    seen = []
    while len(seen) < len(names):
        reply = c.cmd(f"LIST {len(seen)}" if seen else "LIST")
        head, *lines = reply.split("\n")
        assert head == f"OK {len(names)}"
        assert lines and len(reply.encode()) <= 65531
        seen += [line.split(" ", 1)[1] for line in lines]
    assert seen == names
    assert c.cmd(f"LIST {len(names)}") == f"OK {len(names)}"
    assert c.cmd("LIST x").startswith("ERR usage")


def test_tpkt_pipelined_upload_command_data_and_next_command(server, tpkt):
    """UPLOAD, its data and the next command in one segment: replies in order."""
    c = tpkt(server, first=None)
    c.send_raw(tpkt_frame("UPLOAD one 1") + tpkt_frame(b"x") + tpkt_frame("ECHO next"))
    assert c.reply() == "OK 0"
    assert c.reply() == f"OK 1 {sha256_bytes(b'x')}"
    assert c.reply() == "OK next"
    assert (server.data_dir / "one").read_bytes() == b"x"


def test_tpkt_upload_data_beyond_size_fails(server, tpkt):
    c = tpkt(server)
    assert c.cmd("UPLOAD over 3") == "OK 0"
    c.send_frame(b"abcd")
    assert c.reply().startswith("ERR")
    c.expect_closed()
    assert visible_files(server) == []


def test_tpkt_half_close_after_last_frame_still_gets_reply(server, tpkt):
    data = os.urandom(16 * MiB)
    c = tpkt(server)
    assert c.cmd(f"UPLOAD hc.bin {len(data)}") == "OK 0"
    c.send_data(data)
    c.shutdown_write()
    try:
        reply = c.reply(timeout=20)
    except ConnectionClosed as e:
        reply = f"<closed: {e}>"
    assert reply == f"OK {len(data)} {sha256_bytes(data)}", \
        f"got {reply!r}; log:\n{server.log_text()}"


@pytest.mark.parametrize("last", ["a", "b"])
def test_concurrent_uploads_last_wins_never_mix(server, tpkt, last):
    size = 2 * MiB
    data = {"a": os.urandom(size), "b": os.urandom(size)}
    conns = {k: tpkt(server) for k in "ab"}
    for k in "ab":
        assert conns[k].cmd(f"UPLOAD same.bin {size}") == "OK 0"
    step = 256 * 1024
    first = "b" if last == "a" else "a"
    # Interleave everything but the last chunk of each.
    for off in range(0, size - step, step):
        for k in "ab":
            conns[k].send_data(data[k][off:off + step])
    for k in (first, last):
        conns[k].send_data(data[k][size - step:])
        assert conns[k].reply(timeout=20) == f"OK {size} {sha256_bytes(data[k])}"
        got = (server.data_dir / "same.bin").read_bytes()
        assert got == data[k], "the last upload to finish must win, whole"
    assert os.listdir(partial_dir(server)) == []
