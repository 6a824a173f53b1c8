"""Where the binaries are, how long a wait may take, and the process limits.

    BOTTLED  absolute path of the server (default <repo>/build/bottled)
    BOTTLE   absolute path of the client (default <repo>/build/bottle)
    BOTTLED_WRAP          a command to run the server under (mk/valgrind.mk)
    BOTTLE_TIMEOUT_SCALE  stretches the default bounds (slow, wrapped runs)
"""

import functools
import os
import resource
import socket
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
BOTTLED = os.environ.get("BOTTLED") or str(REPO / "build" / "bottled")
BOTTLE = os.environ.get("BOTTLE") or str(REPO / "build" / "bottle")
# A command that runs the server, such as "valgrind --error-exitcode=99 ...":
# the valgrind make target sets it (mk/valgrind.mk).
BOTTLED_WRAP = os.environ.get("BOTTLED_WRAP", "").split()

# Slow runs (the server under valgrind: mk/valgrind.mk) stretch the harness's
# default bounds and its waits for the server's log, start and exit.
TIMEOUT_SCALE = float(os.environ.get("BOTTLE_TIMEOUT_SCALE") or 1)
DEFAULT_TIMEOUT = 5.0 * TIMEOUT_SCALE


def scaled(timeout):
    """A bound given in seconds of a normal run; None: DEFAULT_TIMEOUT."""
    return DEFAULT_TIMEOUT if timeout is None else timeout * TIMEOUT_SCALE


def _raise_nofile_limit():
    """Let this process (and the server it spawns) hold many sockets."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 65536
        want = min(want, 65536)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        pass


_raise_nofile_limit()


def nofile_limit():
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def ipv6_loopback_available():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def wait_until(pred, timeout, what, interval=0.02):
    """Poll state that offers no event to await (a file's size); pred's value."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@functools.lru_cache(maxsize=None)
def binary_is_sanitized(path):
    """True if the binary at ``path`` was built with AddressSanitizer (or
    another sanitizer runtime): slower, and it allocates differently."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__tsan_init" in data or b"__msan_init" in data


def build_is_slow():
    """True when the server runs sanitized or wrapped (valgrind): latency and
    memory bounds meant for the normal build do not hold there."""
    return bool(BOTTLED_WRAP) or binary_is_sanitized(BOTTLED)
