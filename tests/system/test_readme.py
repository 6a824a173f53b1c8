"""The README's examples, run for real, so they cannot go stale.

Each test takes a block of README.md as the reader sees it, swaps the default
address (localhost 4000) for a test server's, runs it, and compares.
"""
import hashlib
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from harness.env import wait_until
from harness.final import parse_final
from harness.files import MiB, sha256_file, write_random

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BOTTLE = os.environ.get("BOTTLE", str(ROOT / "build" / "bottle"))


def indented_block_after(marker):
    """The indented lines of the code block that starts at `marker`."""
    lines = README[README.index(marker):].splitlines()
    block = []
    for line in lines:
        if not line.startswith("    "):
            break
        block.append(line[4:])
    return block


def at_server(text, port):
    return text.replace("localhost 4000", f"127.0.0.1 {port}")


def test_nc_transcript_is_what_the_server_prints(server):
    block = indented_block_after("    $ nc localhost 4000")
    assert block[0] == "$ nc localhost 4000"
    session = block[1:]
    sent = [l for l in session if not re.match(r"(OK|ERR)\b", l)]
    expected = [l for l in session if re.match(r"(OK|ERR)\b", l)]
    assert "QUIT" in sent and len(expected) == len(sent) + 1   # + the greeting

    out = subprocess.run(["nc", "-N", "127.0.0.1", str(server.port)],
                         input=("\n".join(sent) + "\n").encode(),
                         capture_output=True, timeout=10).stdout.decode()
    got = out.splitlines()
    assert len(got) == len(expected), out
    for want, have in zip(expected, got):
        # What changes from run to run: the guest number and the time.
        pattern = re.escape(want)
        pattern = re.sub(r"Guest\d+", r"Guest\\d+", pattern)
        pattern = re.sub(r"\d{4}\\-\d\d\\-\d\dT[\d:\\.]+\\\+\d\d:\d\d",
                         r"\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}[+-]\\d\\d:\\d\\d",
                         pattern)
        assert re.fullmatch(pattern, have), (want, have)


def readme_nc_pipelines():
    lines = [l.strip() for l in README.splitlines()]
    upload = next(l for l in lines if "UPLOAD notes.txt" in l and "| nc" in l)
    i = next(i for i, l in enumerate(lines) if "DOWNLOAD notes.txt" in l and "| nc" in l)
    return upload, lines[i] + "\n" + lines[i + 1]


def test_nc_file_commands_work_as_written(server, tmp_path):
    upload, download = readme_nc_pipelines()
    content = b"hello world, a size taken from the file\n"
    (tmp_path / "notes.txt").write_bytes(content)
    # Each pipeline finishes by itself: the timeout would fail the test.
    subprocess.run(at_server(upload, server.port), shell=True, cwd=tmp_path,
                   check=True, timeout=10, capture_output=True)
    assert (server.data_dir / "notes.txt").read_bytes() == content
    (tmp_path / "notes.txt").unlink()
    subprocess.run(at_server(download, server.port), shell=True, cwd=tmp_path,
                   check=True, timeout=10, capture_output=True)
    assert (tmp_path / "notes.txt").read_bytes() == content
    assert not (tmp_path / "reply").exists()


def test_nc_download_that_fails_ends_and_keeps_the_file(server, tmp_path):
    _, download = readme_nc_pipelines()
    (tmp_path / "notes.txt").write_bytes(b"precious")
    (server.data_dir / "notes.txt").unlink(missing_ok=True)
    out = subprocess.run(at_server(download, server.port), shell=True, cwd=tmp_path,
                         timeout=10, capture_output=True)
    assert out.stdout.decode() == "ERR no such file: notes.txt\n"
    assert (tmp_path / "notes.txt").read_bytes() == b"precious"
    # The same failure leaves an interactive (telnet-like) user connected.
    from harness.clients import LineChatClient
    c = LineChatClient(server.port)
    assert c.cmd("DOWNLOAD notes.txt") == "ERR no such file: notes.txt"
    assert c.cmd("ECHO still here") == "OK still here"


def test_bottle_file_commands_print_what_the_readme_shows(server, tmp_path):
    block = indented_block_after("    $ bottle put report.pdf")
    data = os.urandom(10485760)
    (tmp_path / "report.pdf").write_bytes(data)
    env = dict(os.environ, BOTTLE_SERVER=f"127.0.0.1:{server.port}",
               HOME=str(tmp_path), XDG_STATE_HOME=str(tmp_path / "state"))
    expect_after = {}
    command = None
    for line in block:
        if line.startswith("$ "):
            command = line[2:]
            expect_after[command] = []
        else:
            expect_after[command].append(line)
    for command, expected in expect_after.items():
        argv = command.split()
        assert argv[0] == "bottle"
        if "-o" in argv:        # keep the download inside the test's folder
            shown = argv[argv.index("-o") + 1]
            argv[argv.index("-o") + 1] = str(tmp_path / "out") + "/"
            expected = [l.replace(shown, str(tmp_path / "out") + "/") for l in expected]
            (tmp_path / "out").mkdir()
        out = subprocess.run([BOTTLE] + argv[1:], cwd=tmp_path, env=env,
                             capture_output=True, timeout=30)
        assert out.returncode == 0, out.stderr.decode()
        got = out.stdout.decode().splitlines()
        assert len(got) == len(expected), (command, got)
        for want, have in zip(expected, got):
            pattern = re.sub(r"(?<![a-z/])\d+(\\\.\d+)?", r"[\\d.]+", re.escape(want))
            pattern = re.sub(r"\b(?:B|KiB|MiB|GiB)\b", r"(?:B|KiB|MiB|GiB)", pattern)
            assert re.fullmatch(pattern, have), (want, have)
    assert hashlib.sha256((tmp_path / "out" / "report.pdf").read_bytes()).digest() == \
        hashlib.sha256(data).digest()


def test_setup_commands_are_the_makefile_targets():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("run", "test", "install", "uninstall", "demo", "clean"):
        assert f"make {target}" in README
        assert re.search(rf"^{target}:", makefile, re.M), target
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_interrupted_upload_resumes_as_shown(server, tmp_path):
    block = indented_block_after("    $ bottle put big.iso --limit-rate 2M")
    first, second = [l[2:] for l in block if l.startswith("$ ")]
    said = [l for l in block if l.startswith("bottle: ")]
    final = block[-1]
    address = f"127.0.0.1:{server.port}"
    write_random(tmp_path / "big.iso", 8 * MiB)
    env = dict(os.environ, BOTTLE_SERVER=address, HOME=str(tmp_path),
               XDG_STATE_HOME=str(tmp_path / "state"))
    proc = subprocess.Popen([BOTTLE] + first.split()[1:], cwd=tmp_path, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        server.wait_log(r"upload big\.iso from .*starting at 0")
        partial = server.data_dir / ".bottle" / "partial"
        wait_until(lambda: any(p.stat().st_size > 0 for p in partial.glob("*.data")), 10,
                   "the upload to start moving")
        proc.send_signal(signal.SIGINT)          # what ^C does
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    shown = [l.replace("127.0.0.1:4000", address) for l in said]
    assert err.decode().splitlines() == shown
    out = subprocess.run([BOTTLE] + second.split()[1:], cwd=tmp_path, env=env,
                         capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr.decode()
    pattern = re.sub(r"(?<![a-z/])\d+(\\\.\d+)?", r"[\\d.]+", re.escape(final))
    pattern = re.sub(r"\b(?:B|KiB|MiB|GiB)\b", r"(?:B|KiB|MiB|GiB)", pattern)
    line = out.stdout.decode().strip()
    assert re.fullmatch(pattern, line), (final, line)
    assert parse_final(line)[2][0] > 0
    assert sha256_file(server.data_dir / "big.iso") == sha256_file(tmp_path / "big.iso")
