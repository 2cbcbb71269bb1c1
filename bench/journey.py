"""The onboarding journey over HTTP, as phones do it: cookies, CSRF and each step's form.

wrk cannot carry a session through a multi-step form, so this driver is Python (threads with
httpx clients). Each simulated client opens its emailed link and completes every step; a page
that answers anything but what the browser expects counts the journey as an error.
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import httpx2 as httpx

from bench import dataset
from bench.load import percentile
from bench.report import Row
from portal import invitations
from portal.app import create_app
from portal.audit import Actor, RequestMeta
from portal.db import transaction, utcnow
from portal.models import Practice
from portal.runtime import Runtime

PHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile/15E148"


def invite(url: str, count: int) -> list[str]:
    """`count` new invitations; the paths of their links."""
    app = create_app(dataset.settings_for(url))
    rt: Runtime = app.state.runtime
    links = []
    try:
        with transaction(rt.engine) as db:
            practice = db.get(Practice, 1)
            assert practice is not None
            for n in range(count):
                _, link = invitations.invite(
                    db, rt.services, practice,
                    full_name=f"Journey Client {n}", email=f"journey.{n}@example.com",
                    actor=Actor("staff", "bench"), meta=RequestMeta.none(), now=utcnow(),
                )  # fmt: skip
                links.append("/i/" + link.rsplit("/i/", 1)[1])
    finally:
        rt.engine.dispose()
    return links


class Refused(Exception):
    """A page answered what a browser would not expect."""


@dataclass
class Timings:
    pages: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    completed: int = 0
    errors: int = 0


def _step_form(page: str) -> dict[str, str]:
    form = page.split('<form method="post" action="/onboarding/', 1)[1].split("</form>", 1)[0]
    pairs = re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form)
    return {name: html.unescape(value) for name, value in pairs}


def one_journey(base: str, link: str, n: int, timings: Timings) -> None:
    with httpx.Client(
        base_url=base, headers={"user-agent": PHONE_UA}, follow_redirects=False, timeout=30
    ) as browser:

        def call(label: str, method: str, path: str, expect: int, **kw: object) -> httpx.Response:
            began = time.perf_counter()
            response = browser.request(method, path, **kw)  # type: ignore[arg-type]
            timings.pages[label].append(time.perf_counter() - began)
            if response.status_code != expect:
                raise Refused(f"{label}: {response.status_code}")
            return response

        def step(key: str, data: dict[str, str], expect: int = 303) -> httpx.Response:
            page = call(f"GET /onboarding/{key}", "GET", f"/onboarding/{key}", 200)
            form = {**_step_form(page.text), "csrf_token": browser.cookies["portal_csrf"]}
            return call(f"POST /onboarding/{key}", "POST", f"/onboarding/{key}", expect,
                        data={**form, **data})  # fmt: skip

        call("GET /i/{token}", "GET", link, 200)
        call(
            "POST /i/{token}",
            "POST",
            link,
            303,
            data={"csrf_token": browser.cookies["portal_csrf"]},
        )
        step("policy", {})
        step("contact", {
            "phone_0_number": f"(206) 555-{n % 10000:04d}", "phone_0_kind": "cell",
            "phone_0_voicemail": "practice_name",
        })  # fmt: skip
        step("testimonial", {"choice": "no"})
        step("sign", {"party": "individual"}, expect=200)
        signer = {"esign_consent": "yes", "acknowledge": "yes", "typed_name": f"Journey Client {n}"}
        step("sign", signer)
        call("GET /onboarding/done", "GET", "/onboarding/done", 200)


def run(base: str, links: list[str], concurrency: int) -> tuple[Timings, float]:
    timings = Timings()
    lock = threading.Lock()
    queue = list(enumerate(links))

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                n, link = queue.pop()
            try:
                one_journey(base, link, n, timings)
            except (Refused, httpx.HTTPError, IndexError, KeyError):
                with lock:
                    timings.errors += 1
            else:
                with lock:
                    timings.completed += 1

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return timings, time.perf_counter() - began


def rows(timings: Timings, seconds: float, concurrency: int, database: str) -> list[Row]:
    rate = timings.completed / seconds
    everything = [t for values in timings.pages.values() for t in values]
    worst_label, worst = max(
        ((label, percentile(values, 0.95)) for label, values in timings.pages.items()),
        key=lambda pair: pair[1],
    )
    return [
        Row(
            f"Onboarding journeys ({concurrency} clients at once)",
            database,
            f"{rate:.1f} journeys/s, {timings.completed} complete, {timings.errors} errors",
            "zero errors",
            timings.errors == 0 and timings.completed > 0,
        ),
        Row(
            "Onboarding: p95 per page",
            database,
            f"all pages {percentile(everything, 0.95) * 1000:.0f} ms; slowest "
            f"{worst_label} {worst * 1000:.0f} ms",
            "figure",
            True,
        ),
    ]
