"""A client's browser over real HTTP (httpx against a real server): open the emailed link, read
each step's form like a browser does, submit it. Shared by the multi-process and fault tests."""

from __future__ import annotations

import html
import re

import httpx2 as httpx

LINK = re.compile(r"https?://[^/\s]+(/i/\S+)")

CONTACT = {
    "phone_0_number": "(206) 555-0148",
    "phone_0_kind": "cell",
    "phone_0_voicemail": "practice_name",
}
TESTIMONIAL = {"choice": "anonymous", "placement_website": "yes"}
SIGN = {"esign_consent": "yes", "acknowledge": "yes"}


def browser(base: str, cookies: httpx.Cookies | None = None) -> httpx.Client:
    """A browser on `base`; pass another browser's cookies to open a second tab."""
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    if cookies is not None:
        for cookie in cookies.jar:
            client.cookies.set(cookie.name, cookie.value or "")
    return client


def link_path(text: str) -> str:
    """The path of the invitation (or resume) link in an email's text."""
    match = LINK.search(text)
    assert match, text
    return match.group(1)


def step_form(page: str) -> dict[str, str]:
    """The hidden fields of the step's own form (not the "finish later" one)."""
    form = page.split('<form method="post" action="/onboarding/', 1)[1].split("</form>", 1)[0]
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form)
    }


def csrf(client: httpx.Client) -> str:
    token = client.cookies.get("portal_csrf")
    if token is None:
        client.get("/")
        token = client.cookies.get("portal_csrf")
    assert token, "no CSRF cookie"
    return token


def open_link(client: httpx.Client, path: str) -> httpx.Response:
    """The landing page of an emailed link, then its confirm button (starts a session)."""
    landing = client.get(path)
    assert landing.status_code == 200, landing.text[:500]
    return client.post(path, data={"csrf_token": csrf(client)})


def open_step(client: httpx.Client, key: str) -> tuple[dict[str, str], str]:
    """Open a step page; returns its form's hidden fields (form id, slot id...) and the page."""
    page = client.get(f"/onboarding/{key}")
    assert page.status_code == 200, (page.status_code, page.headers.get("location"))
    return step_form(page.text), page.text


def load_form(client: httpx.Client, key: str) -> dict[str, str]:
    """The hidden fields of a step's form, loaded now (to post later, as an open tab does)."""
    return open_step(client, key)[0]


def next_signer(page: str) -> str:
    """Whose turn it is on the signing page."""
    match = re.search(r'<h2 id="f-slot"[^>]*>(.+?), please sign</h2>', page)
    assert match, "no signer on the page"
    return html.unescape(match.group(1))


def post_step(
    client: httpx.Client, key: str, form: dict[str, str], data: dict[str, str]
) -> httpx.Response:
    """Post a form loaded earlier with `load_form` (as a tab left open does)."""
    return client.post(f"/onboarding/{key}", data={**form, "csrf_token": csrf(client), **data})


def submit(client: httpx.Client, key: str, data: dict[str, str]) -> httpx.Response:
    return post_step(client, key, load_form(client, key), data)


def finish_journey(
    client: httpx.Client, *, email: str | None = None, partner: str | None = None
) -> None:
    """From wherever the client is, do every step still to do until /onboarding/done.

    `email` allows email (so a receipt is mailed there); `partner` signs too (else the
    client alone). Each signer types the name the page asks for."""
    contact = dict(CONTACT)
    if email:
        contact.update(email_address=email, email_warning_accepted="yes")
    answers = {"contact": contact, "testimonial": TESTIMONIAL}
    who = {"party": "adults", "adult_1_name": partner} if partner else {"party": "individual"}
    for _ in range(10):
        where = client.get("/onboarding")
        assert where.status_code == 303, where.text[:300]
        target = where.headers["location"]
        if target == "/onboarding/done":
            assert client.get("/onboarding/done").status_code == 200
            return
        key = target.rsplit("/", 1)[1]
        if key == "sign":
            form, page = open_step(client, "sign")
            if form.get("phase") != "sign":
                assert post_step(client, "sign", form, who).status_code == 200
                form, page = open_step(client, "sign")
            response = post_step(client, "sign", form, {**SIGN, "typed_name": next_signer(page)})
        else:
            response = submit(client, key, answers.get(key, {}))
        assert response.status_code in (200, 303), (key, response.status_code, response.text[:500])
    raise AssertionError("the journey did not reach its end")
