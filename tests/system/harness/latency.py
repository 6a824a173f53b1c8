"""Is the one thread ever blocked?  A pinger sends ECHO every 10 ms on its
own line connection and records round trips; percentiles judge them."""

import threading
import time

from harness.clients import Client


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


class Pinger(threading.Thread):
    """ECHO every 10 ms on its own line-mode connection; records round trips."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.samples = []           # (start, rtt seconds)
        self.error = None

    def run(self):
        try:
            with Client(self.port, nodelay=True, timeout=5) as c:
                assert c.cmd("ECHO warmup") == "OK warmup"
                self.ready.set()
                i = 0
                tick = time.perf_counter()
                while not self.stop.is_set():
                    t0 = time.perf_counter()
                    r = c.cmd(f"ECHO p{i}")
                    t1 = time.perf_counter()
                    assert r == f"OK p{i}", r
                    self.samples.append((t0, t1 - t0))
                    i += 1
                    tick += 0.010
                    delay = tick - time.perf_counter()
                    if delay > 0:
                        self.stop.wait(delay)       # pacing, not synchronisation
                    else:
                        tick = time.perf_counter()
        except BaseException as e:  # reported by the test
            self.error = e
            self.ready.set()

    def rtts(self, t_from, t_to, completed=False):
        """Sorted round trips of pings sent in [t_from, t_to] (and, with
        ``completed``, answered by t_to)."""
        return sorted(r for (t, r) in self.samples
                      if t_from <= t <= t_to and (not completed or t + r <= t_to))


def latency_report(label, rtts):
    ms = [r * 1000 for r in rtts]
    return (f"{label}: n={len(ms)} median={percentile(ms, 50):.2f}ms "
            f"p99={percentile(ms, 99):.2f}ms max={max(ms) if ms else float('nan'):.2f}ms")


def assert_latency(label, rtts, min_samples):
    ms = [r * 1000 for r in rtts]
    report = latency_report(label, rtts)
    print("\n" + report)
    assert len(ms) >= min_samples, f"too few pings to judge ({report})"
    assert percentile(ms, 50) < 10, report
    assert percentile(ms, 99) < 50, report
    assert max(ms) < 50, report


def start_pinger(srv):
    pinger = Pinger(srv.port)
    pinger.start()
    assert pinger.ready.wait(5) and pinger.error is None, pinger.error
    return pinger


def stop_pinger(pinger):
    pinger.stop.set()
    pinger.join(5)
    assert not pinger.is_alive(), "pinger did not stop"
    assert pinger.error is None, pinger.error
