"""The layout is enforced by the build (docs/design.md, "The layout"): a file
of one side sees src/common and its own folder only.

The test asks make for the very command it compiles one module of each folder
with, then compiles a probe file with that command: including a header of the
other side must fail, including one of its own side or of common must work.
"""

import shlex
import subprocess

import pytest

from harness.env import REPO

MODULE = {"common": "tpkt", "server": "conn", "client": "client"}
OWN_HEADER = {"common": "tpkt.h", "server": "conn.h", "client": "client.h"}


def compile_command(side, build):
    out = subprocess.run(
        ["make", "-s", "-n", "-B", f"BUILD={build}", f"{build}/{MODULE[side]}.o"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True).stdout
    line = next(l for l in out.splitlines() if f"src/{side}/{MODULE[side]}.c" in l)
    words = shlex.split(line)
    # Keep the compiler and its flags; drop the dependency output, the source
    # and the object.
    keep, skip = [], False
    for w in words:
        if skip:
            skip = False
        elif w == "-o":
            skip = True
        elif w.endswith(".c") or w in ("-MMD", "-MP"):
            continue
        else:
            keep.append(w)
    return keep


def compiles(cmd, tmp_path, header):
    probe = tmp_path / "probe.c"
    probe.write_text(f'#include "{header}"\nint probe_unused;\n')
    r = subprocess.run(cmd + ["-fsyntax-only", str(probe)], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    return r.returncode == 0, r.stderr


@pytest.mark.parametrize("side,other", [("server", "client"), ("client", "server"),
                                        ("common", "server"), ("common", "client")])
def test_a_side_cannot_include_the_other(tmp_path, side, other):
    cmd = compile_command(side, tmp_path / "build")
    ok, err = compiles(cmd, tmp_path, OWN_HEADER[side])
    assert ok, f"{side} cannot include its own {OWN_HEADER[side]}:\n{err}"
    ok, err = compiles(cmd, tmp_path, "proto.h")
    assert ok, f"{side} cannot include common's proto.h:\n{err}"
    ok, _ = compiles(cmd, tmp_path, OWN_HEADER[other])
    assert not ok, f"a {side} file could include {other}'s {OWN_HEADER[other]}"
