"""How the benchmarks measure: timing a piece of work, printing a figure, metering a process's
CPU, and running a service (or its worker groups) as production does for the length of a run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from council.platform.settings import Settings


def timed(work: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    count = work()
    return count, time.perf_counter() - started


def row(label: str, count: int, seconds: float, unit: str = "events", after: str = "") -> float:
    rate = count / seconds if seconds else float("inf")
    print(f"  {label:<46} {count:>9,} {unit:<6}  {seconds:>8.2f} s  {rate:>11,.0f} {unit}/s"
          f"{after}", flush=True)
    return rate


def wait_until(what: str, done: Callable[[], bool], timeout: float = 300.0,
               poll: float = 0.02) -> None:
    """Poll `done` (every 20 ms: each look is a query or two, and a bench that looks too
    often takes CPU from what it measures; the figures are a few hundredths late at most)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: {what} did not happen within {timeout:.0f} s")
        time.sleep(poll)


def settings_env(settings: Settings) -> dict[str, str]:
    """This process's environment with `settings` as the only COUNCIL_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"COUNCIL_{name.upper()}"] = str(value)
    return env


class CpuMeter:
    """CPU seconds used by a process and its children (Linux /proc; nothing elsewhere), by
    role: the HTTP process, and each worker group. On a machine others share, wall-clock
    figures move with their load; CPU time per event says what our work costs."""

    def __init__(self, pid: int, named: dict[str, int] | None = None) -> None:
        self.pid = pid
        self.named = named  # instead: these processes by name, no children

    @classmethod
    def of(cls, named: dict[str, int]) -> CpuMeter:
        return cls(0, named)

    @staticmethod
    def _cpu(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def sample(self) -> dict[str, float]:
        if self.named is not None:
            return {name: self._cpu(pid) for name, pid in self.named.items()}
        found = {"api": self._cpu(self.pid)}
        try:  # every thread's: a restarted child is started by the supervising thread
            children = [c for task in Path(f"/proc/{self.pid}/task").iterdir()
                        for c in (task / "children").read_text().split()]
        except OSError:
            return found
        for child in children:
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            group = argv[argv.index(b"--group") + 1].decode() if b"--group" in argv else child
            found[group] = found.get(group, 0.0) + self._cpu(int(child))
        return found

    @staticmethod
    def show(before: dict[str, float], after: dict[str, float], events: int) -> None:
        parts = [f"{name} {(after[name] - before.get(name, 0.0)) * 1e6 / events:,.0f}"
                 for name in after]
        print(f"  {'  CPU per report (us)':<46} " + ", ".join(parts))


@dataclass(frozen=True)
class Served:
    url: str
    cpu: CpuMeter


@contextmanager
def served(service: str, settings: Settings, log_file: Path,
           options: Sequence[str] = ()) -> Iterator[Served]:
    """The service running as it does in production (`council serve [options]`: the HTTP
    process and its worker processes), on a free port, once /ready answers 200."""
    from council.tools.tansu import free_port

    settings = settings.model_copy(update={f"{service}_port": free_port()})
    url = settings.url_of(service)
    with open(log_file, "ab") as sink:
        process = subprocess.Popen([sys.executable, "-m", "council.tools.cli", "serve", service,
                                    *options],
                                   env=settings_env(settings), stdout=sink,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            def ready() -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"bench: {service} exited {process.returncode}; see "
                                       f"{log_file}")
                try:
                    return httpx.get(f"{url}/ready", timeout=2).status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(f"{service} answering /ready", ready, timeout=60, poll=0.1)
            yield Served(url, CpuMeter(process.pid))
        except BaseException:
            tail = log_file.read_text(errors="replace").splitlines()[-30:]
            print(f"bench: the last lines of {service}'s log:", *tail, sep="\n  ",
                  file=sys.stderr)
            raise
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextmanager
def worked(service: str, processes: Mapping[str, tuple[str, Settings]],
           log_file: Path) -> Iterator[CpuMeter]:
    """Some of a service's background work alone (no HTTP, no other groups): one `council
    work` process per entry (its name -> its worker group and settings), as `council serve`
    would start them, or as a scale-out deployment runs several of one group (an ingest per
    share of the inbound partitions)."""
    with open(log_file, "ab") as sink:
        started = {name: subprocess.Popen(
            [sys.executable, "-m", "council.tools.cli", "work", service, "--group", group],
            env=settings_env(own), stdout=sink, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL) for name, (group, own) in processes.items()}
        try:
            yield CpuMeter.of({name: p.pid for name, p in started.items()})
        finally:
            for process in started.values():
                process.terminate()
            for process in started.values():
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
