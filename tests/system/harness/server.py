"""The server under test: a bottled process, its log, its exit, and what its
sanitizer or valgrind report says once it stopped."""

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness.env import BOTTLED, BOTTLED_WRAP, binary_is_sanitized, scaled

class Server:
    """A running bottled process whose stderr log is collected by a thread."""

    def __init__(self, args, data_dir, listen=("127.0.0.1:0",), binary=None):
        self.binary = binary or BOTTLED
        if not os.path.exists(self.binary):
            pytest.fail(f"server binary not found: {self.binary} "
                        f"(build it first or set BOTTLED)")
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.argv = BOTTLED_WRAP + [self.binary]
        for addr in listen or ():
            self.argv += ["-l", addr]
        self.argv += ["-d", str(self.data_dir)]
        self.argv += [str(a) for a in args]

        self._cond = threading.Condition()
        self._lines = []          # stderr (the log), one entry per line
        self._stdout = []         # stdout, one entry per line
        self._eof = False         # stderr reached EOF
        self.returncode = None
        self.port = None
        self.stop_timed_out = False   # stop() had to SIGKILL it

        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.pid = self.proc.pid
        self._threads = [
            threading.Thread(target=self._reader, args=(self.proc.stderr, True),
                             name=f"bottled-{self.pid}-stderr", daemon=True),
            threading.Thread(target=self._reader, args=(self.proc.stdout, False),
                             name=f"bottled-{self.pid}-stdout", daemon=True),
        ]
        for t in self._threads:
            t.start()

    # -- log collection ----------------------------------------------------

    def _reader(self, stream, is_log):
        try:
            for raw in stream:
                text = raw.decode("utf-8", errors="replace").rstrip("\n")
                with self._cond:
                    (self._lines if is_log else self._stdout).append(text)
                    self._cond.notify_all()
        finally:
            if is_log:
                with self._cond:
                    self._eof = True
                    self._cond.notify_all()

    def log_lines(self):
        with self._cond:
            return list(self._lines)

    def log_text(self):
        return "\n".join(self.log_lines())

    def stdout_text(self):
        with self._cond:
            return "\n".join(self._stdout)

    def log_mark(self):
        """Index to pass as ``since`` to only look at later log lines."""
        with self._cond:
            return len(self._lines)

    def find_log(self, regex, since=0):
        """Non-blocking: first matching log line's re.Match, or None."""
        pat = re.compile(regex)
        with self._cond:
            for line in self._lines[since:]:
                m = pat.search(line)
                if m:
                    return m
        return None

    def _wait_log(self, regex, timeout, since):
        pat = re.compile(regex)
        deadline = time.monotonic() + timeout
        with self._cond:
            checked = since
            while True:
                while checked < len(self._lines):
                    m = pat.search(self._lines[checked])
                    checked += 1
                    if m:
                        return checked - 1, m
                if self._eof:
                    why = "server log ended"
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    why = f"timed out after {timeout}s"
                    break
                self._cond.wait(remaining)
            log = "\n".join(self._lines)
        raise AssertionError(
            f"{why} waiting for log line /{regex}/; log so far:\n{log}")

    def wait_log(self, regex, timeout=None, since=0):
        """Wait until a log line (index >= since) matches; return re.Match.

        Event-driven (the reader thread notifies a Condition).  Fails the
        test when the deadline passes or the log ends first.
        """
        return self._wait_log(regex, scaled(timeout), since)[1]

    def wait_logs(self, regex, count, timeout=None, since=0):
        """Wait for ``count`` matching log lines; return their re.Match list."""
        deadline = time.monotonic() + scaled(timeout)
        matches = []
        pos = since
        while len(matches) < count:
            idx, m = self._wait_log(
                regex, max(0.0, deadline - time.monotonic()), pos)
            matches.append(m)
            pos = idx + 1
        return matches

    def wait_listening(self, timeout=10.0):
        m = self.wait_log(r"listening on 127\.0\.0\.1:(\d+)", timeout=timeout)
        self.port = int(m.group(1))
        return self.port

    # -- lifecycle ---------------------------------------------------------

    def running(self):
        return self.proc.poll() is None

    def signal(self, signum):
        if self.proc.poll() is None:
            os.kill(self.pid, signum)

    def wait(self, timeout=5.0):
        """Wait for exit (bounded); return the exit code, None if still up."""
        try:
            self.returncode = self.proc.wait(timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            return None
        self._join_readers()
        return self.returncode

    def stop(self, timeout=5.0):
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL. Return exit code.

        A negative code means death by that signal (-9: had to be killed).
        """
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=scaled(timeout))
            except subprocess.TimeoutExpired:
                self.stop_timed_out = True
                self.signal(signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        self.returncode = self.proc.returncode
        self._join_readers()
        return self.returncode

    def _join_readers(self):
        for t in self._threads:
            t.join(timeout=2.0)
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass

    def thread_count(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
        raise AssertionError("no Threads: line in /proc status")

    def __repr__(self):
        return f"<Server pid={self.pid} port={self.port} argv={self.argv}>"


def run_bottled(*args, timeout=10):
    """Run the server binary to completion (for --help, bad options...)."""
    return subprocess.run([BOTTLED, *[str(a) for a in args]],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout)


SANITIZER_REPORT = re.compile(r"(ERROR: (Address|Leak)Sanitizer|runtime error:)[^\n]*")
# BOTTLED_WRAP="valgrind --log-file=DIR/bottled.%p.log ...": one report per server.
VALGRIND_LOG = next((w.split("=", 1)[1] for w in BOTTLED_WRAP
                     if w.startswith("--log-file=")), None)


def valgrind_problem(srv):
    """What is wrong in the valgrind report of a stopped server; None if nothing.

    Errors (definite leaks count with --errors-for-leak-kinds=definite) and,
    with --track-fds=yes, descriptors the server opened and left open.  A
    server the test killed with a signal leaves no report to check.
    """
    if not VALGRIND_LOG:
        return None
    if srv.stop_timed_out:
        return "did not exit after SIGTERM: killed, so valgrind wrote no report"
    if srv.returncode is not None and srv.returncode < 0:
        return None
    path = Path(VALGRIND_LOG.replace("%p", str(srv.pid)))
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"left no valgrind report: {e}"
    m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    if not m:
        return f"left an unfinished valgrind report, {path}:\n{text[-4000:]}"
    # An fd block ends at an empty "==pid== " line; an inherited one says so.
    fds = [b for b in re.findall(r"^==\d+== (Open .*?)\n==\d+== \n", text, re.M | re.S)
           if "<inherited from parent>" not in b]
    if int(m.group(1)) or fds:
        return (f"had {m.group(1)} valgrind errors and left {len(fds)} descriptors "
                f"open; {path}:\n{text}")
    return None


def disconnect_re(port, host=r"127\.0\.0\.1"):
    """The log line of a closed connection; group 1 is the reason."""
    return rf"disconnect {host}:{port}: (.+) \(\d+ clients?\)$"


def wait_disconnect(server, port, since=0, timeout=10.0):
    """The reason the server logged for closing the connection from ``port``."""
    return server.wait_log(disconnect_re(port), timeout=timeout, since=since).group(1)


def server_is_instrumented(server):
    """True for a sanitizer build or a wrapped (valgrind) server: slower, and
    its memory figures say little about the allocator's."""
    return bool(BOTTLED_WRAP) or binary_is_sanitized(server.binary)
