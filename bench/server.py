"""Serve the portal or the bare app with uvicorn in a subprocess on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
from starlette.applications import Starlette

from portal.app import create_app
from portal.mail_catcher import free_port
from portal.settings import Settings


def full_app() -> Starlette:
    """`uvicorn --factory bench.server:full_app`: the portal, configured by PORTAL_* variables."""
    return create_app(Settings(_env_file=None), freeze_heap=True)  # type: ignore[call-arg]


@contextmanager
def serve(factory: str, env: dict[str, str], ready_path: str) -> Iterator[str]:
    """Run `factory` under uvicorn (one process, like `portal serve`); yields its base URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "--factory", factory,
        "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(command, env={**os.environ, **env}, cwd=root)  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{factory} exited with {process.returncode}")
            try:
                if httpx.get(base + ready_path, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{factory} did not start within 60 s")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def portal_env(url: str, **extra: str) -> dict[str, str]:
    from bench.dataset import SECRET

    return {
        "PORTAL_DATABASE_URL": url,
        "PORTAL_SECRET_KEYS": SECRET,
        "PORTAL_MAIL_IN_PROCESS": "false",
        "PORTAL_EXPORT_IN_PROCESS": "false",
        # The per-key API rate limit would answer most of a load test with 429s: the bench
        # measures the work, so the limit is lifted (its cost per request remains).
        "PORTAL_API_RATE_PER_MINUTE": "100000000",
        **extra,
    }
