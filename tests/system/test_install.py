"""make install / make uninstall into a scratch DESTDIR.

Run with:  pytest-3 -q tests/system/test_install.py
Uses the build directory that holds BOTTLED (default build/), so it installs
what the other tests ran against.  Checks the installed tree (binaries, man
pages, the systemd unit with ExecStart pointing at the installed bottled),
runs ``systemd-analyze verify`` on the unit when that is installed, then
checks that make uninstall leaves no file behind.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.env import BOTTLED, REPO

PREFIX = "/usr"
MAKE_TIMEOUT = 300          # install depends on all: may have to compile

UNIT = f"{PREFIX}/lib/systemd/system/bottled.service"
EXPECTED = {
    f"{PREFIX}/sbin/bottled": 0o755,
    f"{PREFIX}/bin/bottle": 0o755,
    f"{PREFIX}/share/man/man8/bottled.8": 0o644,
    f"{PREFIX}/share/man/man1/bottle.1": 0o644,
    UNIT: 0o644,
}
REQUIRED_DIRECTIVES = [
    "DynamicUser=yes",
    "StateDirectory=bottle",
    "ProtectSystem=strict",
    "NoNewPrivileges=yes",
    "PrivateTmp=yes",
    "ProtectHome=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6",
    "LimitNOFILE=65536",
]


def make(*args):
    """Run make in the repo with the build directory of BOTTLED."""
    env = dict(os.environ)
    for var in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):   # when run from make
        env.pop(var, None)
    build = os.path.relpath(Path(BOTTLED).parent, REPO)
    r = subprocess.run(["make", "-C", str(REPO), f"BUILD={build}", *args],
                       capture_output=True, text=True, env=env,
                       timeout=MAKE_TIMEOUT, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, \
        f"make {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


def files_under(root):
    return sorted(str(Path(d, f).relative_to(root))
                  for d, _, fs in os.walk(root) for f in fs)


def unit_settings(text):
    """The unit's active lines (no comments, no blanks), stripped."""
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith(("#", ";"))]


@pytest.fixture
def installed(tmp_path):
    dest = tmp_path / "root"
    make("install", f"DESTDIR={dest}", f"PREFIX={PREFIX}")
    yield dest
    # leave nothing behind even when a check failed
    shutil.rmtree(dest, ignore_errors=True)


def test_install_tree(installed):
    dest = installed
    for path, mode in EXPECTED.items():
        p = dest / path.lstrip("/")
        assert p.is_file(), f"{path} not installed; tree: {files_under(dest)}"
        assert p.stat().st_mode & 0o777 == mode, \
            f"{path}: mode {oct(p.stat().st_mode & 0o777)}, want {oct(mode)}"
    assert sorted(f"/{f}" for f in files_under(dest)) == sorted(EXPECTED)

    sbin = dest / "usr/sbin/bottled"
    r = subprocess.run([str(sbin), "--version"], capture_output=True,
                       text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stdout.startswith("bottled ")
    for page in ("usr/share/man/man8/bottled.8", "usr/share/man/man1/bottle.1"):
        assert (dest / page).read_text().startswith(".\\\""), \
            f"{page} does not look like a roff page"


def test_unit_file(installed):
    text = (installed / UNIT.lstrip("/")).read_text()
    settings = unit_settings(text)
    assert "@SBINDIR@" not in text, "@SBINDIR@ left unsubstituted"

    execs = [s for s in settings if s.startswith("ExecStart=")]
    assert len(execs) == 1, f"want one ExecStart, got {execs}"
    argv = execs[0][len("ExecStart="):].split()
    assert argv[0] == f"{PREFIX}/sbin/bottled", execs[0]
    assert "-d" in argv and argv[argv.index("-d") + 1] == "%S/bottle", execs[0]

    # the commented example for listening on every interface
    assert re.search(r"^#\s*ExecStart=/usr/sbin/bottled .*-l 0\.0\.0\.0:\d+",
                     text, re.M), "no commented all-interfaces ExecStart"

    for directive in REQUIRED_DIRECTIVES:
        assert directive in settings, f"{directive} missing from the unit"
    for section in ("[Unit]", "[Service]", "[Install]"):
        assert section in settings
    # the log goes to the journal (the default; the unit may say so)
    for s in settings:
        if s.startswith(("StandardError=", "StandardOutput=")):
            assert s.split("=", 1)[1] in ("journal", "journal+console"), s


def test_unit_verifies(installed, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze not installed")
    # verify wants ExecStart's binary to exist: point a copy at DESTDIR's.
    text = (installed / UNIT.lstrip("/")).read_text()
    copy = tmp_path / "bottled.service"
    copy.write_text(text.replace(f"ExecStart={PREFIX}/sbin/bottled",
                                 f"ExecStart={installed}{PREFIX}/sbin/bottled"))
    r = subprocess.run([analyze, "verify", "--man=no", str(copy)],
                       capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stderr.strip() == "" \
        and r.stdout.strip() == "", \
        f"systemd-analyze verify ({r.returncode}):\n{r.stdout}{r.stderr}"


def test_uninstall_leaves_no_files(installed):
    make("uninstall", f"DESTDIR={installed}", f"PREFIX={PREFIX}")
    left = files_under(installed)
    assert left == [], f"make uninstall left: {left}"
