"""A program on a real terminal: bottle in tmux, driven by send-keys and
read by capture-pane."""

import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from harness.env import DEFAULT_TIMEOUT


class Tmux:
    """One bottle in a detached tmux session on a private tmux server."""

    def __init__(self, command, width=120, height=30):
        if not shutil.which("tmux"):
            pytest.skip("tmux not installed")
        self.name = f"bottle-test-{uuid.uuid4().hex[:12]}"
        self.tmux(["new-session", "-d", "-x", str(width), "-y", str(height), command])

    def tmux(self, args, check=True):
        return subprocess.run(["tmux", "-L", self.name, "-f", "/dev/null", *args],
                              capture_output=True, timeout=DEFAULT_TIMEOUT, check=check)

    def keys(self, text=None, enter=False):
        if text is not None:
            self.tmux(["send-keys", "-l", text])
        if enter:
            self.tmux(["send-keys", "Enter"])

    def type(self, text):
        """Types a line and presses Enter."""
        self.keys(text, enter=True)

    def screen(self):
        return self.tmux(["capture-pane", "-p"]).stdout.decode()

    def lines(self):
        return [line.rstrip() for line in self.screen().splitlines() if line.strip()]

    def wait(self, pred, what, timeout=DEFAULT_TIMEOUT):
        """Poll the screen until pred(lines) holds (no event to await here)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()
            if pred(lines):
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never showed {what}:\n" + "\n".join(lines))
            time.sleep(0.05)

    def wait_text(self, text, timeout=DEFAULT_TIMEOUT):
        return self.wait(lambda lines: any(text in line for line in lines), repr(text),
                         timeout)

    def kill(self):
        # The client itself is killed by PID too: under ASan, a client hung up
        # by tmux can spin in LeakSanitizer at exit and outlive the test.
        shown = self.tmux(["display", "-p", "#{pane_pid}"], check=False)
        pids = [int(w) for w in shown.stdout.split() if w.isdigit()]
        self.tmux(["kill-server"], check=False)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        # tmux leaves its socket file behind; don't litter the tmux directory.
        tmpdir = os.environ.get("TMUX_TMPDIR") or "/tmp"
        try:
            os.unlink(os.path.join(tmpdir, f"tmux-{os.getuid()}", self.name))
        except OSError:
            pass
