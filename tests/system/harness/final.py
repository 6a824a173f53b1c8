"""The final line of a `bottle put/get` (src/client/progress.c, progress_final):

    uploaded f.bin: 4.0 MiB in 1.2 s (3.3 MiB/s, 28.00 Mbit/s)
    uploaded f.bin: 4.0 MiB in 1.2 s, 2.5 MiB sent now (2.1 MiB/s, 17.50 Mbit/s), resumed at 1.5 MiB

Sizes are in binary units with one decimal, so what a test reads back from a
line is a byte count to within that rounding."""

import re

UNIT = r"\d+(?:\.\d)? (?:B|KiB|MiB|GiB|TiB)"
FINAL_RE = re.compile(rf"^(?:uploaded|downloaded) \S+(?: to \S+)?: (?P<size>{UNIT}) in "
                      rf"[\d.:]+(?: s)?(?:, (?P<moved>{UNIT}) (?:sent|received) now)? "
                      rf"\({UNIT}/s, [\d.]+ [kMGT]?bit/s\)(?:, resumed at (?P<at>{UNIT}(?:, {UNIT})*))?$")
_SCALE = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def unit_bytes(text):
    """ "6.8 MiB" -> 7130316 (approximately: the text was rounded)."""
    number, unit = text.split(" ")
    return round(float(number) * _SCALE[unit])


def close_to(shown, exact):
    """True when a size shown with one decimal can be the exact byte count:
    off by at most half a tenth of the unit it was shown in."""
    if exact < 1024:
        return shown == exact
    unit = 1024
    while exact >= unit * 1024:
        unit *= 1024
    return abs(shown - exact) <= 0.06 * unit


def parse_final(line):
    """(size, moved, [resumed at, ...]) in bytes, from a final line; moved is
    the size when nothing was resumed."""
    m = FINAL_RE.search(line)
    assert m, f"not a final line: {line!r}"
    size = unit_bytes(m.group("size"))
    moved = unit_bytes(m.group("moved")) if m.group("moved") else size
    ats = [unit_bytes(x) for x in m.group("at").split(", ")] if m.group("at") else []
    return size, moved, ats
