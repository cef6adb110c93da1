"""Subprocesses of the benchmarks: Flight servers, client workers, and their memory."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

LISTENING = re.compile(r"listening on grpc://[^:]+:(\d+)")


class Server:
    """A Flight server in a subprocess; its output goes to a log file (never a full pipe)."""

    def __init__(self, args: list[str], log: Path, *, timeout: float = 60.0) -> None:
        self.log_path = log
        self._log: IO[bytes] = open(log, "wb")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.popen = subprocess.Popen(
            [sys.executable, *args], stdout=self._log, stderr=subprocess.STDOUT, env=env
        )
        self.port = self._wait_port(timeout)
        self.uri = f"grpc://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """Process id of the server."""
        return self.popen.pid

    def _wait_port(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log_path.read_text(encoding="utf-8", errors="replace"))
            if match:
                return int(match.group(1))
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"server did not start: {self.log_path.read_text(encoding='utf-8', errors='replace')}"
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a few seconds."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=15)
        self._log.close()


def zcollection_server(root: Path, log: Path) -> Server:
    """``zcollection-server --root root`` on 127.0.0.1, any port."""
    return Server(
        ["-m", "zcollection_server", "--root", str(root), "--host", "127.0.0.1", "--port", "0"],
        log,
    )


# -- memory ------------------------------------------------------------------------------------
def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds used so far by process ``pid`` (None: this process)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` now."""
    return _status_kib(pid, "VmRSS") * 1024


class PeakRSS:
    """Peak resident memory of a process during a block, above its RSS at the start.

    Samples ``VmRSS`` every ``interval`` seconds and, where the kernel allows resetting it
    (``/proc/<pid>/clear_refs``), also reads the kernel's own peak ``VmHWM``.
    """

    def __init__(self, pid: int, interval: float = 0.002) -> None:
        self.pid = pid
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self.hwm_reset = False
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except (OSError, RuntimeError):
                return
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w", encoding="ascii") as handle:
                handle.write("5")  # resets VmHWM to the current RSS
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self.baseline = rss_bytes(self.pid)
        self.peak = self.baseline
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.hwm_reset:
            with contextlib.suppress(OSError, RuntimeError):
                self.peak = max(self.peak, _status_kib(self.pid, "VmHWM") * 1024)

    @property
    def growth(self) -> int:
        """Peak RSS minus the RSS at the start, in bytes."""
        return max(0, self.peak - self.baseline)
