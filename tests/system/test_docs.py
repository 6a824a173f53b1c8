"""The man pages: they render cleanly and list exactly the options of --help.

Run with:  pytest-3 -q tests/system/test_docs.py
The pages are built by make (scdoc) next to the binaries: build/bottled.8 and
build/bottle.1 (BOTTLED / BOTTLE select other builds).  Sources: man/*.scd.

For each program, the option definitions in the page's OPTIONS section must be
the same set, short and long forms paired alike, as the option lines of
``--help``; and every --long-option the page mentions anywhere (outside
literal example blocks) must be one that --help lists.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.env import BOTTLE, BOTTLED, REPO

PAGES = {
    # program: (binary, section)
    "bottled": (BOTTLED, 8),
    "bottle": (BOTTLE, 1),
}

# An option line of --help: "  -l, --listen HOST:PORT", "      --max-line BYTES",
# "    -c, --command COMMAND", "  -v, --verbose".
HELP_OPTION_RE = re.compile(
    r"^\s+(?:(?P<short>-[A-Za-z0-9])(?=[,\s]|$),?\s*)?(?P<long>--[a-z][a-z0-9-]*)?")
LONG_RE = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# An option definition in scdoc: *-l*, *--listen* _HOST_:_PORT_
SCD_OPTION_RE = re.compile(r"\*(-{1,2}[A-Za-z0-9][A-Za-z0-9-]*)\*")

RUN_TIMEOUT = 20


def clean_env():
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
    env.pop("MANPAGER", None)
    env.pop("PAGER", None)
    return env


def page_path(program):
    binary, section = PAGES[program]
    path = Path(binary).parent / f"{program}.{section}"
    if not path.exists():
        pytest.fail(f"{path} not found: build it with make (needs scdoc)")
    return path


def scd_source(program):
    _, section = PAGES[program]
    return (REPO / "man" / f"{program}.{section}.scd").read_text()


def help_text(program):
    binary, _ = PAGES[program]
    if not os.path.exists(binary):
        pytest.skip(f"{binary} not built yet")
    r = subprocess.run([binary, "--help"], capture_output=True, text=True,
                       timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"{program} --help exited {r.returncode}: {r.stderr}"
    return r.stdout


def help_options(text):
    """{(short or None, long or None)} from the option lines of --help."""
    opts = set()
    for line in text.splitlines():
        m = HELP_OPTION_RE.match(line)
        if m and (m.group("short") or m.group("long")):
            opts.add((m.group("short"), m.group("long")))
    return opts


def scd_sections(source):
    """{title: body} of the scdoc page's top-level sections."""
    sections, title, body = {}, None, []
    for line in source.splitlines():
        if line.startswith("# "):
            if title:
                sections[title] = "\n".join(body)
            title, body = line[2:].strip(), []
        elif title:
            body.append(line)
    if title:
        sections[title] = "\n".join(body)
    return sections


def scd_options(source):
    """{(short or None, long or None)} from the OPTIONS section definitions."""
    body = scd_sections(source).get("OPTIONS")
    assert body is not None, "the page has no OPTIONS section"
    opts = set()
    for line in body.splitlines():
        if not line.startswith("*-"):
            continue            # descriptions are indented; prose starts otherwise
        short = long = None
        for name in SCD_OPTION_RE.findall(line):
            if name.startswith("--"):
                long = name
            else:
                short = name
        opts.add((short, long))
    return opts


def scd_prose(source):
    """The page without its ``` literal blocks and ; comments."""
    out, literal = [], False
    for line in source.splitlines():
        if line.strip() == "```":
            literal = not literal
        elif not literal and not line.startswith("; "):
            out.append(line)
    return "\n".join(out)


def fmt(opts):
    return ", ".join(sorted("/".join(o for o in pair if o) for pair in opts))


@pytest.mark.parametrize("program", sorted(PAGES))
def test_page_renders_without_warnings(program):
    path = page_path(program)
    if shutil.which("man"):
        r = subprocess.run(["man", "--warnings", "-l", str(path)],
                           capture_output=True, text=True, env=clean_env(),
                           timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"man -l {path}: exit {r.returncode}: {r.stderr}"
        assert r.stderr == "", f"man --warnings -l {path}:\n{r.stderr}"
        assert f"{program} -" in r.stdout.replace("\u2010", "-")
    if shutil.which("groff"):
        r = subprocess.run(["groff", "-man", "-ww", "-z", str(path)],
                           capture_output=True, text=True, env=clean_env(),
                           timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
        assert r.returncode == 0 and r.stderr == "", \
            f"groff -man -ww -z {path}:\n{r.stderr}"
    if not shutil.which("man") and not shutil.which("groff"):
        pytest.skip("neither man nor groff is installed")


@pytest.mark.parametrize("program", sorted(PAGES))
def test_options_match_help(program):
    in_help = help_options(help_text(program))
    in_page = scd_options(scd_source(program))
    assert in_help, f"no options found in {program} --help"
    missing = in_help - in_page
    extra = in_page - in_help
    assert not missing and not extra, (
        f"{program}: man page OPTIONS and --help differ\n"
        f"  in --help only: {fmt(missing) or '-'}\n"
        f"  in the man page only: {fmt(extra) or '-'}")


@pytest.mark.parametrize("program", sorted(PAGES))
def test_page_mentions_only_real_options(program):
    known = {long for _, long in help_options(help_text(program)) if long}
    mentioned = set(LONG_RE.findall(scd_prose(scd_source(program))))
    unknown = mentioned - known
    assert not unknown, \
        f"{program} man page mentions options --help does not list: {sorted(unknown)}"


@pytest.mark.parametrize("program", sorted(PAGES))
def test_page_version_matches_binary(program):
    binary, _ = PAGES[program]
    if not os.path.exists(binary):
        pytest.skip(f"{binary} not built yet")
    r = subprocess.run([binary, "--version"], capture_output=True, text=True,
                       timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
    version = r.stdout.split()[-1]
    header = scd_source(program).splitlines()[0]
    assert f'"bottle {version}"' in header, \
        f"man/{program} header {header!r} does not name version {version}"
