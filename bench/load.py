"""Load drivers: wrk (the real one) and a Python one (threads + httpx) for what wrk can't do.

Both give a `Load`: requests per second, p50/p95 latency and the count of failed requests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx

SCRIPT = Path(__file__).resolve().parent / "wrk" / "requests.lua"
INSTALL_HINT = "wrk is not installed: apt-get install -y wrk (Debian/Ubuntu) or brew install wrk"


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def require_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(INSTALL_HINT)
    return found


def wrk(
    base: str,
    paths: Sequence[str],
    headers: dict[str, str] | None = None,
    seconds: float = 10,
    connections: int = 16,
    threads: int = 1,
) -> Load:
    """Run wrk against `base`, cycling through `paths` (one wrk thread: the server has the
    other core)."""
    with tempfile.TemporaryDirectory() as folder:
        path_file = Path(folder) / "paths"
        path_file.write_text("\n".join(paths) + "\n")
        header_file = Path(folder) / "headers"
        header_file.write_text("".join(f"{k}: {v}\n" for k, v in (headers or {}).items()))
        command = [
            require_wrk(), "-t", str(threads), "-c", str(connections),
            "-d", f"{max(int(seconds), 1)}s", "--timeout", "10s", "-s", str(SCRIPT),
            base + paths[0],
        ]  # fmt: skip
        env = {"BENCH_PATHS": str(path_file), "BENCH_HEADERS": str(header_file)}
        done = subprocess.run(  # noqa: S603
            command,
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": "/usr/bin:/bin", **env},
        )
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON "))
    figures = json.loads(line.removeprefix("BENCH_JSON "))
    return Load(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        errors=figures["errors"] + figures["status_errors"],
        p50_ms=figures["p50_us"] / 1000,
        p95_ms=figures["p95_us"] / 1000,
    )


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def python_driver(
    base: str,
    paths: Sequence[str],
    headers: dict[str, str] | None = None,
    seconds: float = 2,
    connections: int = 4,
    ok: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200,
) -> Load:
    """The same measurement with threads and keep-alive httpx clients (no wrk needed)."""
    timings: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(start: int) -> None:
        mine: list[float] = []
        bad = 0
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            i = start
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                try:
                    good = ok(client.get(paths[i % len(paths)]))
                except httpx.HTTPError:
                    good = False
                mine.append(time.perf_counter() - began)
                bad += not good
                i += 1
        with lock:
            timings.extend(mine)
            errors[0] += bad

    began = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(n * 7919,)) for n in range(connections)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    return Load(
        requests=len(timings),
        seconds=elapsed,
        errors=errors[0],
        p50_ms=percentile(timings, 0.5) * 1000,
        p95_ms=percentile(timings, 0.95) * 1000,
    )
