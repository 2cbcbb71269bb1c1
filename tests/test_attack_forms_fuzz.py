"""Property-based fuzzing of every form the app takes: client steps, staff and admin forms.

The routes come from the app (tests/attack_routes.py), each posted with the session it needs and
a valid CSRF token, so the body reaches the handler: arbitrary text, invalid UTF-8, NUL bytes,
lone surrogates, bidi marks, repeated fields, huge values, urlencoded and multipart, htmx or not.
The property: never a 5xx; a 422 names the problem; a body over PORTAL_MAX_FORM_BYTES is a 413;
thousands of fields are a 400.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_from_bytes

import hypothesis
import pytest
from attack_routes import UNSAFE, World, build_world, endpoints
from helpers import csrf_token, onboard, staff_sign_in
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.testclient import TestClient

from portal import invitations
from portal.db import transaction
from portal.models import Enrollment
from portal.runtime import Runtime
from portal.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
MAX_UPLOAD = 512 * 1024
# Per route and database (about 30 s per database); PORTAL_FUZZ_EXAMPLES=200 for a long hunt.
EXAMPLES = int(os.environ.get("PORTAL_FUZZ_EXAMPLES", "10"))
# Routes that end or replace the sessions the others need: fuzzed after all the others.
SESSION_ENDING = (
    "/staff/admin/staff/totp",
    "/staff/logout",
    "/onboarding/later",
    "/onboarding/sign-out",
    "/i/{token:str}",
    "/r/{token:str}",
    "/link",
    "/staff/login/code",
    "/staff/login",
)
ODD = [
    "\x00", "\u202e", "\u200f", "\u2066", "\ufeff", "\ud800", "\udfff", "\U0001f4a5", "é",
    "\r\n", "\r", "%", "%zz", "&", "=", "+", ";", '"', "<script>", "{{ 7*7 }}", "\u0085",
    "\u2028", "\ufffd", "ǅ", "İ", "ß", "\x7f", "\x1b[31m", "../../etc/passwd",
]  # fmt: skip


def _template_field_names() -> list[str]:
    """Every literal form field name in the app's templates (host and plugins)."""
    names: set[str] = set()
    for folder in (ROOT / "templates", ROOT / "plugins"):
        for path in folder.rglob("*.html"):
            names.update(re.findall(r'name="([A-Za-z0-9_]+)"', path.read_text()))
    return sorted(names - {"csrf_token"})


FIELD_NAMES = _template_field_names()
STATUSES: dict[str, list[int]] = {}  # what the fuzz got back, per route (printed at the end)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_upload_bytes": MAX_UPLOAD})


@pytest.fixture
def world(app: Starlette, rt: Runtime) -> Iterator[World]:
    yield from build_world(app, rt)


# -- bodies ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    pairs: tuple[tuple[bytes, bytes], ...]
    multipart: bool
    raw: bool  # urlencoded: bytes as they are, not percent-encoded
    htmx: bool
    charset: str = ""  # appended to the content type: "; charset=..."

    def encode(self, token: str) -> tuple[bytes, dict[str, str]]:
        pairs = ((b"csrf_token", token.encode()), *self.pairs)
        headers = {"accept": "text/html"}
        if self.htmx:
            headers["hx-request"] = "true"
        if self.multipart:
            boundary = "fuzz" + secrets.token_hex(8)
            headers["content-type"] = f"multipart/form-data; boundary={boundary}{self.charset}"
            return multipart_body(pairs, boundary), headers
        headers["content-type"] = "application/x-www-form-urlencoded" + self.charset
        quote = (lambda b: b.replace(b"&", b"%26").replace(b"=", b"%3D")) if self.raw else _quote
        return b"&".join(quote(k) + b"=" + quote(v) for k, v in pairs), headers


def _quote(value: bytes) -> bytes:
    return quote_from_bytes(value).encode()


def multipart_body(pairs: tuple[tuple[bytes, bytes], ...], boundary: str) -> bytes:
    parts = []
    for name, value in pairs:
        safe = name.replace(b'"', b"%22").replace(b"\r", b"").replace(b"\n", b"")
        parts.append(
            b"--" + boundary.encode() + b"\r\n"
            b'Content-Disposition: form-data; name="' + safe + b'"\r\n\r\n' + value + b"\r\n"
        )
    return b"".join(parts) + b"--" + boundary.encode() + b"--\r\n"


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes invalid UTF-8


texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(ODD),
    st.lists(st.one_of(st.sampled_from(ODD), st.text(max_size=4)), max_size=8).map("".join),
    st.builds(lambda n, c: c * n, st.integers(0, 60_000), st.sampled_from(["a", "é", "\x00", " "])),
)
values = st.one_of(texts.map(_utf8), st.binary(max_size=40))


# Forms that pass validation as they are: a mutant differs in one field, so odd input reaches
# the code that stores it, not only the validation in front.
POLICY_SOURCE = "# Our policy\n\n## Contact\n\nCall {{ practice_phone }}.\n"
VALID: dict[str, dict[str, str]] = {
    "/staff/invite": {"name": "Jo Park", "email": "jo@example.com"},
    "/staff/clients/{enrollment_id:str}/mrn": {"mrn": "MRN-20417"},
    "/staff/admin/staff": {
        "name": "Bo Chan", "email": "bo@example.com", "role": "therapist",
        "password": "a long enough passphrase 42",
    },
    "/staff/admin/api-keys": {"name": "Second EHR", "scope": "clients:read"},
    "/staff/admin/webhooks": {"url": "https://ehr.example/second", "name": "Second"},
    "/staff/policy/details": {
        "name": "Harbor Light", "phone": "(206) 555-0142", "email": "office@example.com",
        "website": "https://example.com", "licensing_board": "the Board",
        "crisis_line": "Call 988.",
    },
    "/staff/policy/preview": {"action": "preview", "source": POLICY_SOURCE},
    "/staff/clients/{enrollment_id:str}/discussed": {
        "confirm": "yes", "discussed_on": "2026-01-05", "note": "Went through it together.",
    },
    "/staff/clients/{enrollment_id:str}/countersign": {
        "confirm": "yes", "typed_name": "Dana Whitfield",
    },
    "/link": {"email": "morgan.ellis@example.com"},
    "/staff/login": {"email": "nobody@harborlight.example", "password": "wrong password here"},
    "/onboarding/{key}": {
        "policy_version": "1", "phone_0_number": "(206) 555-0148", "phone_0_kind": "cell",
        "phone_0_voicemail": "practice_name", "email_address": "jordan.r@example.com",
        "email_warning_accepted": "yes", "choice": "anonymous", "placement_website": "yes",
        "phase": "who", "action": "save", "party": "adults", "adult_1_name": "Casey Rivers",
    },
}  # fmt: skip


def mutants(valid: dict[str, str]) -> st.SearchStrategy[Form]:
    """`valid` with odd text put into one field (replacing, before, inside or after)."""

    def mutate(field: str, odd: str, where: int, multipart: bool, htmx: bool) -> Form:
        pairs = []
        for key, value in valid.items():
            if key == field:
                value = [odd, odd + value, value[:2] + odd + value[2:], value + odd][where]
            pairs.append((key.encode(), _utf8(value)))
        return Form(tuple(pairs), multipart, raw=False, htmx=htmx)

    return st.builds(
        mutate,
        st.sampled_from(sorted(valid)),
        texts,
        st.integers(0, 3),
        st.booleans(),
        st.booleans(),
    )


CHARSETS = ["", "; charset=utf-8", "; charset=latin-1", "; charset=utf-16", "; charset=nope"]


def forms(names: list[str]) -> st.SearchStrategy[Form]:
    """Mostly the route's own field names (so validation runs), some strangers, repeats allowed."""
    own = st.sampled_from([n.encode() for n in names])
    name = st.one_of(own, own, texts.map(_utf8))
    pair = st.tuples(name, values)
    return st.builds(
        Form,
        pairs=st.lists(pair, max_size=12).map(tuple),
        multipart=st.booleans(),
        raw=st.booleans(),
        htmx=st.booleans(),
        charset=st.sampled_from(CHARSETS),
    )


# 500s the fuzz found, kept as examples that run first every time (route template -> forms).
REGRESSIONS: dict[str, list[Form]] = {
    # An htmx request with a bad email rendered the form block alone, whose macros were
    # imported outside it: "'csrf' is undefined".
    "/link": [Form(((b"email", b"not an address"),), multipart=False, raw=False, htmx=True)],
    # Sign-in looked the email up before validating it; PostgreSQL refuses text with a NUL.
    "/staff/login": [
        Form(((b"email", b"a\x00@b.example"), (b"password", b"x")), False, raw=False, htmx=False)
    ],
}


# -- the property ----------------------------------------------------------------------------

PROBLEM = re.compile(
    r'(?:role="alert"|class="field-error"|class="error-summary")[^>]*>(.*?)</', re.S
)


def check(response_status: int, text: str, what: str) -> None:
    assert response_status < 500, f"{what}: {response_status}\n{text[:2000]}"
    if response_status == 422:
        named = [m for m in PROBLEM.findall(text) if re.sub(r"<[^>]+>|\s", "", m)]
        assert named, f"{what}: a 422 that names no problem\n{text[:2000]}"


def fuzz(
    browser: TestClient, url: str, names: list[str], refresh: object = None, route: str = ""
) -> set[int]:
    """Fuzz one route; returns the statuses it answered with."""
    extra: dict[bytes, bytes] = {}
    statuses = STATUSES.setdefault(route or url, [])
    first = len(statuses)
    valid = VALID.get(route or url)
    strategy = st.one_of(forms(names), mutants(valid)) if valid else forms(names)

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(form=strategy)
    def run(form: Form) -> None:
        if callable(refresh):
            extra.update(refresh())
        pairs = tuple(extra.items()) + form.pairs
        body, headers = Form(pairs, form.multipart, form.raw, form.htmx).encode(csrf_token(browser))
        response = browser.post(url, content=body, headers=headers)
        statuses.append(response.status_code)
        check(response.status_code, response.text, f"POST {url} {form!r}"[:3000])

    for case in REGRESSIONS.get(route or url, []):
        run = hypothesis.example(form=case)(run)
    run()
    return set(statuses[first:])


# -- the tests -------------------------------------------------------------------------------


def test_every_staff_and_public_form_survives_arbitrary_input(
    app: Starlette, rt: Runtime, world: World
) -> None:
    browser = world.browser
    admin = "admin@harborlight.example"
    resume = _resume_link(rt, world.enrollment_id)

    def keep_sessions() -> None:
        if browser.get("/staff/", headers={"accept": "text/html"}).status_code != 200:
            staff_sign_in(browser, admin)
        if browser.get("/onboarding").status_code == 401:
            browser.get(resume)
            browser.post(resume, data={"csrf_token": csrf_token(browser)})

    routes = _form_routes(app)
    fuzzed: dict[str, set[int]] = {}
    for path in routes:
        if path.startswith("/onboarding/{key"):
            continue  # the steps get a client at that step: test below
        keep_sessions()
        fuzzed[path] = fuzz(browser, world.url(path), FIELD_NAMES, route=path)
    assert len(fuzzed) >= 30 and "/staff/login" in fuzzed
    # The bodies reached the handlers, signed in: their validation answered.
    for path in ("/staff/invite", "/staff/admin/staff", "/staff/admin/webhooks", "/link"):
        assert 422 in fuzzed[path], f"{path} never reached its validation: {fuzzed[path]}"


def test_every_client_step_survives_arbitrary_input(app: Starlette, rt: Runtime) -> None:
    from helpers import publish_default

    publish_default(rt)
    for index, spec in enumerate(rt.wizard.steps):
        enrollment = onboard(rt, f"Fuzz Step {index}", f"fuzz{index}@example.com", steps=index)
        with TestClient(app, base_url="http://testserver", follow_redirects=False) as browser:
            link = _resume_link(rt, enrollment.id).removeprefix("http://testserver")
            browser.get(link)
            assert browser.post(link, data={"csrf_token": csrf_token(browser)}).status_code == 303
            page = browser.get(f"/onboarding/{spec.key}")
            assert page.status_code == 200, page.text
            names = sorted(set(re.findall(r'name="([^"]+)"', page.text)) - {"csrf_token"})

            def fresh_form_id() -> dict[bytes, bytes]:
                return {b"form_id": secrets.token_urlsafe(16).encode()}

            for route in ("/onboarding/{key}", "/onboarding/{key}/validate"):
                url = route.replace("{key}", spec.key)
                got = fuzz(browser, url, names or FIELD_NAMES, refresh=fresh_form_id, route=route)
                if not route.endswith("validate"):  # the step's own validation answered
                    assert 422 in got, f"{url} never reached its validation: {got}"


def test_a_body_over_the_limit_is_413_on_every_form(
    app: Starlette, rt: Runtime, world: World, settings: Settings
) -> None:
    browser = world.browser
    token = csrf_token(browser)
    huge = b"a" * (settings.max_form_bytes + 1)
    big_upload = b"a" * (MAX_UPLOAD + 1)
    for path in _form_routes(app):
        url = world.url(path)
        body, headers = Form(((b"note", huge),), False, False, False).encode(token)
        response = browser.post(url, content=body, headers=headers)
        assert response.status_code == 413, f"POST {url}: {response.status_code}"
        body, headers = Form(((b"note", big_upload),), True, False, False).encode(token)
        response = browser.post(url, content=body, headers=headers)
        assert response.status_code == 413, f"POST {url} (multipart): {response.status_code}"


def test_thousands_of_fields_are_refused_not_crashed(
    app: Starlette, rt: Runtime, world: World
) -> None:
    browser = world.browser
    token = csrf_token(browser)
    for path in _form_routes(app):
        url = world.url(path)
        for count, multipart in ((5000, False), (5000, True), (300, False), (300, True)):
            pairs = tuple((f"f{i}".encode(), b"x") for i in range(count))
            body, headers = Form(pairs, multipart, False, False).encode(token)
            response = browser.post(url, content=body, headers=headers)
            check(response.status_code, response.text, f"POST {url} with {count} fields")
            if count == 5000:
                assert response.status_code == 400, f"POST {url}: {response.status_code}"


def _form_routes(app: Starlette) -> list[str]:
    """Every cookie-session route that takes a POST, session-ending ones last."""
    paths = sorted(e.path for e in endpoints(app) if e.methods & UNSAFE and not e.is_data_api)
    return sorted(paths, key=lambda p: SESSION_ENDING.index(p) + 1 if p in SESSION_ENDING else 0)


def _resume_link(rt: Runtime, enrollment_id: str) -> str:
    with transaction(rt.engine) as db:
        enrollment = db.get(Enrollment, enrollment_id)
        assert enrollment is not None
        return invitations.resume_link(rt.services, enrollment)


def teardown_module() -> None:
    """What the fuzz reached (shown with pytest -s): statuses per route, both databases."""
    from collections import Counter

    for route, codes in STATUSES.items():
        print(f"{route}: {dict(Counter(codes))}")
