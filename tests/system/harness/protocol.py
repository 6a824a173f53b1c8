"""What bottled says and how it frames it (docs/protocol.md): the greeting,
the first words of its lines, TPKT frames (RFC 1006), and the pure helpers
that cut lines and frames off a buffer."""

import re
import struct

# Timestamp that starts every log line: 2026-11-23T17:45:00.123+00:00
TIMESTAMP_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"
GREETING_RE = re.compile(
    r"^OK bottled (\S+) ready; type HELP for commands; you are Guest(\d+)$")
# First word of every line the server may send.
EVENT_WORDS = ("MSG", "JOIN", "LEAVE", "NICK", "PRESENCE", "ACTION", "PRIVATE", "HISTORY",
               "FILE")
LINE_WORDS = ("OK", "ERR") + EVENT_WORDS


def _event_word(text):
    """The first word, after the "@<offset> " of a tagged room message."""
    words = text.split(" ", 2)
    if words[0].startswith("@") and words[0][1:].isdigit() and len(words) > 1:
        return words[1]
    return words[0]


def first_word_ok(line):
    return _event_word(line) in LINE_WORDS


def is_event(line):
    return _event_word(line) in EVENT_WORDS


TPKT_VERSION = 3
TPKT_HDR_LEN = 4
TPKT_MAX_LEN = 65535
TPKT_MAX_PAYLOAD = TPKT_MAX_LEN - TPKT_HDR_LEN


def as_bytes(data):
    return data.encode() if isinstance(data, str) else bytes(data)


def tpkt_frame(payload):
    """One TPKT frame (RFC 1006) carrying ``payload`` (str or bytes)."""
    payload = as_bytes(payload)
    total = TPKT_HDR_LEN + len(payload)
    assert total <= TPKT_MAX_LEN, f"payload too long for one frame: {len(payload)}"
    return struct.pack(">BBH", TPKT_VERSION, 0, total) + payload


def as_text(data):
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) \
        else data


def is_event_text(text):
    return _event_word(text) in EVENT_WORDS


def is_reply_text(text):
    word = text.split(" ", 1)[0]
    return word in ("OK", "ERR")


def take_lines(buf):
    """Complete lines (bytes, without the newline) off the front of ``buf``
    (a bytearray, consumed in place)."""
    end = buf.rfind(b"\n")
    if end < 0:
        return []
    lines = bytes(buf[:end]).split(b"\n")
    del buf[:end + 1]
    return lines


def take_frames(buf):
    """Complete TPKT payloads off the front of ``buf`` (a bytearray, consumed in
    place); a bad header from the server fails the test."""
    out = []
    pos = 0
    while len(buf) - pos >= TPKT_HDR_LEN:
        version, reserved, total = struct.unpack(">BBH", buf[pos:pos + TPKT_HDR_LEN])
        assert version == TPKT_VERSION and reserved == 0 and total >= TPKT_HDR_LEN, \
            f"bad TPKT header from the server: {bytes(buf[pos:pos + 16])!r}"
        if len(buf) - pos < total:
            break
        out.append(bytes(buf[pos + TPKT_HDR_LEN:pos + total]))
        pos += total
    del buf[:pos]
    return out
