"""Real servers for fault tests: `portal serve` and `portal mail-worker` as subprocesses (so they
can be SIGKILLed), and a uvicorn server in a thread (cheap, for concurrency within one process).

Subprocesses get their configuration the way production does, from PORTAL_* variables, and run
in a folder of their own so no `.env` file is picked up. Their output goes to a log file, shown
when one fails to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import uvicorn
from conftest import PRACTICE
from starlette.applications import Starlette

from portal.app import create_app
from portal.db import transaction
from portal.mail_catcher import free_port
from portal.models import Practice
from portal.runtime import Runtime
from portal.settings import Settings

ENTRY = "from portal.cli import main; main()"


def settings_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment that makes a `portal` command use `settings` (what the tests need)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
    env.update(
        PORTAL_DATABASE_URL=settings.database_url,
        PORTAL_SECRET_KEYS=",".join(settings.key_list),
        PORTAL_BASE_URL=settings.base_url,
        PORTAL_SMTP_HOST=settings.smtp_host,
        PORTAL_SMTP_PORT=str(settings.smtp_port),
        PORTAL_MAIL_IN_PROCESS="false",
        PORTAL_EXPORT_IN_PROCESS="false",
        PORTAL_MAIL_BACKOFF_SECONDS=str(settings.mail_backoff_seconds),
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


@dataclass
class PortalProcess:
    """One `portal` command running in a subprocess."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    base_url: str | None = None  # servers only

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, open transactions are cut off mid-flight."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a graceful stop), then SIGKILL if it does not end in time."""
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


def _spawn(name: str, args: list[str], env: dict[str, str], folder: Path) -> PortalProcess:
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [sys.executable, "-c", ENTRY, *args],
            env=env,
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return PortalProcess(name, popen, log_path)


def start_server(
    settings: Settings, folder: Path, name: str = "serve", *, wait: bool = True, **env: str
) -> PortalProcess:
    """`portal serve` on a free loopback port; returns once /readyz answers 200 (unless `wait`
    is false: start several, then `wait_ready` each)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = settings_env(settings, **{"PORTAL_BASE_URL": base, **env})
    process = _spawn(name, ["serve", "--port", str(port)], environment, folder)
    process.base_url = base
    if wait:
        wait_ready(process)
    return process


def start_mail_worker(
    settings: Settings, folder: Path, name: str = "mail-worker", interval: float = 0.2, **env: str
) -> PortalProcess:
    """`portal mail-worker` polling every `interval` seconds."""
    args = ["mail-worker", "--interval", str(interval)]
    return _spawn(name, args, settings_env(settings, **env), folder)


def wait_ready(process: PortalProcess, timeout: float = 90.0) -> None:
    """Until /readyz says 200. Generous: six processes importing at once on two busy cores
    have taken 30 s."""
    assert process.base_url is not None
    deadline = time.monotonic() + timeout
    while True:
        if not process.alive():
            raise AssertionError(f"{process.name} exited:\n{process.log()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{process.base_url}/readyz", timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(
                f"{process.name} not ready in {timeout}s:\n{process.log()[-3000:]}"
            )
        time.sleep(0.05)


@contextlib.contextmanager
def running(*processes: PortalProcess) -> Iterator[tuple[PortalProcess, ...]]:
    """Stop every process at the end, whatever happened."""
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


@contextlib.contextmanager
def serve_in_thread(app: Starlette, port: int | None = None) -> Iterator[str]:
    """The app under uvicorn on a loopback port (`port`, or a free one) in this process;
    yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def live_portal(settings: Settings) -> Iterator[tuple[str, Runtime]]:
    """The portal of the test practice served on loopback, its links pointing there, and
    delivering its own mail (as `portal serve` does); yields its base URL and runtime."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(settings.model_copy(update={"base_url": base, "mail_in_process": True}))
    rt: Runtime = app.state.runtime
    with transaction(rt.engine) as db:
        db.add(Practice(**PRACTICE))
    try:
        with serve_in_thread(app, port):
            yield base, rt
    finally:
        rt.engine.dispose()
