"""A program on pipes, read line by line: a script-mode bottle, openssl
s_client."""

import queue
import re
import subprocess
import threading
import time


class LineProcess:
    """A process whose stdout a thread reads line by line (without the line
    end): say() to stdin, expect() a line, close() kills it (the fixtures')."""

    def __init__(self, argv, env=None, cwd=None, wait=10.0):
        self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, cwd=cwd)
        self.wait = wait  # the default bound of every wait here
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))

    def say(self, text):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def _first(self, match, what, timeout):
        """match(line) of the first stdout line where it is not None; fails at the
        deadline, listing the lines seen."""
        deadline = time.monotonic() + (self.wait if timeout is None else timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line {what}; saw {self.seen}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(line)
            m = match(line)
            if m is not None:
                return m

    def expect(self, pattern, timeout=None):
        """The first stdout line matching the regex (searched): its match."""
        return self._first(lambda line: re.search(pattern, line), f"/{pattern}/", timeout)

    def expect_line(self, want, timeout=None):
        """The first stdout line equal to want."""
        return self._first(lambda line: line if line == want else None, repr(want), timeout)

    def finish(self, timeout=None):
        """Closes stdin (EOF) and waits: the exit status."""
        self.proc.stdin.close()
        return self.proc.wait(timeout=self.wait if timeout is None else timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=self.wait)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except (OSError, ValueError):
                pass
