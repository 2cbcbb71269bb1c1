"""The plugin author's path, end to end: the README's example step plugin, installed as a
distribution (an entry point in the `portal.plugins` group), migrated with `portal migrate`,
served with `portal serve`, and met by a client over HTTP.

Everything runs in subprocesses on a database of its own: the plugin's table and migration
branch must not leak into the other tests' databases or this process's SQLModel metadata.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from conftest import DATABASES, _settings, empty_postgres_database
from http_journey import browser, finish_journey, load_form, open_link, post_step
from processes import ENTRY, running, settings_env, start_server
from sqlalchemy import create_engine, text

from portal.mail_catcher import MailCatcher

EXAMPLE = Path(__file__).parent / "example_plugin"
PLUGIN_FILE = EXAMPLE / "portal_crisis_notice" / "plugin.py"
README = Path(__file__).parent.parent / "README.md"


def test_the_readme_quotes_the_example_plugin_as_it_is() -> None:
    """The plugin-author guide shows this file; a change to one without the other fails here."""
    readme = README.read_text()
    quoted = readme.split("<!-- example-plugin -->", 2)
    assert len(quoted) == 3, "README lacks the <!-- example-plugin --> markers"
    block = quoted[1].strip()
    assert block.startswith("```python\n") and block.endswith("```")
    assert block.removeprefix("```python\n").removesuffix("```") == PLUGIN_FILE.read_text()


@pytest.fixture(params=DATABASES)
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'plugin.db'}"
        return
    with empty_postgres_database("portal_plugin") as url:
        yield url


def _installed(tmp_path: Path) -> str:
    """What `pip install` of the plugin's package leaves behind: the package on the path and a
    dist-info naming its module in the `portal.plugins` entry-point group."""
    site = tmp_path / "site"
    dist = site / "portal_crisis_notice-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: portal-crisis-notice\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[portal.plugins]\ncrisis_notice = portal_crisis_notice.plugin\n"
    )
    return f"{EXAMPLE}:{site}"


def _portal(env: dict[str, str], *args: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", ENTRY, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _confirmations(url: str) -> int:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return int(conn.execute("SELECT count(*) FROM crisisnoticeconfirmation").fetchone()[0])
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM crisisnoticeconfirmation")).scalar_one()
    engine.dispose()
    return int(count)


def test_an_installed_step_plugin_migrates_and_joins_the_journey(
    fresh_database: str, mail_server: MailCatcher, tmp_path: Path
) -> None:
    settings = _settings(fresh_database, smtp_port=mail_server.port)
    env = settings_env(settings, PYTHONPATH=_installed(tmp_path))
    _portal(env, "migrate", cwd=tmp_path)
    practice = {
        "--name": "Harbor Light Counseling",
        "--phone": "(206) 555-0100",
        "--email": "office@harborlight.example",
        "--website": "https://harborlight.example",
        "--licensing-board": "Washington State Department of Health",
        "--crisis-line": "988",
    }
    _portal(
        env, "practice", "set", *[part for item in practice.items() for part in item], cwd=tmp_path
    )
    _portal(env, "policy", "publish", "--default", cwd=tmp_path)
    invited = _portal(env, "invite", "ana@example.org", "--name", "Ana Lima", cwd=tmp_path)
    link = invited.split()[-1]

    server = start_server(settings, tmp_path / "serve", PYTHONPATH=env["PYTHONPATH"])
    with running(server), browser(server.base_url or "") as tab:
        open_link(tab, re.sub(r"^https?://[^/]+", "", link))
        # The plugin's step comes first (order 50, before the policy's 100).
        assert tab.get("/onboarding").headers["location"] == "/onboarding/crisis"
        form = load_form(tab, "crisis")

        refused = post_step(tab, "crisis", form, {})
        assert refused.status_code == 422
        assert "Please tick the box to go on." in refused.text
        assert 'aria-invalid="true"' in refused.text
        assert _confirmations(fresh_database) == 0, "an error must write nothing"

        accepted = post_step(tab, "crisis", form, {"understood": "yes"})
        assert accepted.status_code == 303
        assert accepted.headers["location"] == "/onboarding/policy"
        assert _confirmations(fresh_database) == 1

        finish_journey(tab)
        done = tab.get("/onboarding/done")
        assert "You know this portal is not for emergencies." in done.text
        assert httpx.get(f"{server.base_url}/readyz").status_code == 200
