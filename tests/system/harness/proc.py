"""What a process holds, read from /proc: descriptors, resident memory, CPU."""

import collections
import os
import re

from harness.env import wait_until


def proc_fd_count(pid):
    """Descriptors the process holds now (the entries of /proc/PID/fd)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_rss_kib(pid):
    """The process's resident set size (VmRSS in /proc/PID/status), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS line in /proc/{pid}/status")


def proc_cpu_seconds(pid):
    """User plus system CPU time the process has used, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_fd_count(server, want, timeout=10.0):
    """Wait until the server holds exactly ``want`` descriptors (a baseline)."""
    seen = [None]

    def back():
        seen[0] = proc_fd_count(server.pid)
        return seen[0] == want
    try:
        wait_until(back, timeout, f"the server's descriptors to return to {want}")
    except AssertionError:
        fds = sorted(os.listdir(f"/proc/{server.pid}/fd"), key=int)
        targets = collections.Counter()
        for fd in fds:
            try:
                targets[re.sub(r"\d+", "N", os.readlink(f"/proc/{server.pid}/fd/{fd}"))] += 1
            except OSError:
                pass
        raise AssertionError(
            f"server holds {seen[0]} descriptors after {timeout}s, baseline {want}: "
            f"{dict(targets)}; log tail:\n" + "\n".join(server.log_lines()[-30:])) from None
