"""Tests for the policy template renderer and the default policy it ships with."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from portal_policy.rendering import (
    PLACEHOLDERS,
    PolicyTemplateError,
    PracticeDetails,
    RenderedPolicy,
    default_policy_source,
    find_placeholders,
    missing_details,
    render_policy,
)

PRACTICE = PracticeDetails(
    name="Quiet Harbor Counseling",
    phone="(555) 010-2030",
    email="office@quietharbor.example",
    website="https://quietharbor.example",
    licensing_board="the State Board of Behavioral Health",
    crisis_line="555-010-9999",
)

HOSTILE_NAME = "A*B <b>Care</b> [x](y) _u_ `c` {{ crisis_line }}"


def _render_default(practice: PracticeDetails = PRACTICE) -> RenderedPolicy:
    return render_policy(default_policy_source(), practice)


class _TagCollector(HTMLParser):
    """Collects start tags so tests can assert no markup was injected."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = _TagCollector()
    collector.feed(html)
    collector.close()
    return collector.tags


# --- the default policy ------------------------------------------------------------------

TOPIC_PHRASES = {
    "purpose": ["education only", "not therapy", "not advice", "crisis"],
    "friending": ["friend", "follow", "connect", "former clients", "follow you back", "personal"],
    "confidentiality": ["identify you", "written consent"],
    "testimonials": ["testimonial", "explicit written consent", "withdraw", "identify you"],
    "contact": [
        "landline",
        "cell phone",
        "email",
        "scheduling",
        "text message",
        "social network",
        "wall post",
        "clinical record",
        "not fully secure",
    ],
    "crisis": ["911", "emergency room", "988", "call or text 988", "not monitor"],
    "search engines": ["search engine", "emergency", "afterwards"],
    "review sites": ["review", "not a request for a review", "cannot reply", "licensing board"],
    "check-ins": ["check-in"],
    "changes": ["in writing", "copy of the new version"],
    "acknowledgement": [
        "I have read this policy, understand it, accept it, and was offered a copy.",
    ],
}


@pytest.mark.parametrize("topic", sorted(TOPIC_PHRASES))
def test_default_policy_covers_topic(topic: str) -> None:
    text = _render_default().text.lower()
    for phrase in TOPIC_PHRASES[topic]:
        assert phrase.lower() in text, f"{topic}: missing {phrase!r}"


def test_default_policy_title_and_sections() -> None:
    policy = _render_default()
    assert default_policy_source().startswith("# Social Media and Communications Policy\n")
    assert policy.title == "Social Media and Communications Policy"
    anchors = [section.anchor for section in policy.sections]
    for expected in (
        "friends-followers-and-connections",
        "your-confidentiality",
        "testimonials",
        "contacting-us-between-sessions",
        "if-you-are-in-crisis",
        "search-engines",
        "business-review-sites",
        "location-check-ins",
        "changes-to-this-policy",
        "your-acknowledgement",
    ):
        assert expected in anchors
    assert len(set(anchors)) == len(anchors)


def test_default_policy_uses_only_known_placeholders_and_renders_them_all() -> None:
    source = default_policy_source()
    assert find_placeholders(source) == PLACEHOLDERS
    policy = _render_default()
    for output in (policy.html, policy.text, *(s.html for s in policy.sections)):
        assert "{{" not in output
        assert "}}" not in output
    for value in (PRACTICE.phone, PRACTICE.email, PRACTICE.website, PRACTICE.crisis_line):
        assert value in policy.text
    assert PRACTICE.name in policy.html
    assert PRACTICE.licensing_board in policy.html


def test_default_policy_crisis_section_names_crisis_line() -> None:
    crisis = next(s for s in _render_default().sections if s.anchor == "if-you-are-in-crisis")
    assert "988" in crisis.html
    assert "911" in crisis.html
    assert PRACTICE.crisis_line in crisis.html


def test_default_policy_has_no_sentinel_leftovers() -> None:
    policy = _render_default()
    assert "qzph" not in policy.html
    assert "qzph" not in policy.text


# --- placeholders ------------------------------------------------------------------------


def test_find_placeholders_accepts_optional_spaces() -> None:
    source = "{{practice_name}} {{ practice_phone }} {{   crisis_line}} {{ nope }}"
    assert find_placeholders(source) == {"practice_name", "practice_phone", "crisis_line", "nope"}


def test_unknown_placeholders_are_listed() -> None:
    source = "# T\n\n## A\n\n{{ practice_name }} {{ practice_fax }} {{ therapist }}\n"
    with pytest.raises(PolicyTemplateError) as excinfo:
        render_policy(source, PRACTICE)
    message = str(excinfo.value)
    assert "practice_fax" in message
    assert "therapist" in message
    assert "practice_name" not in message.split("Known")[0]


def test_misspelt_placeholder_is_reported_not_leaked() -> None:
    with pytest.raises(PolicyTemplateError, match="practice name"):
        render_policy("## A\n\n{{ practice name }}\n", PRACTICE)


def test_unclosed_placeholder_is_an_error() -> None:
    with pytest.raises(PolicyTemplateError, match="line 3"):
        render_policy("## A\n\n{{ practice_name\n", PRACTICE)


def test_placeholder_in_heading_title_and_anchor() -> None:
    policy = render_policy("## About {{ practice_name }}\n\nHi.\n", PRACTICE)
    assert policy.sections[0].title == "About Quiet Harbor Counseling"
    assert policy.sections[0].anchor == "about-quiet-harbor-counseling"


def test_missing_details_lists_blank_values_that_are_used() -> None:
    practice = replace(PRACTICE, crisis_line="  ", website="")
    source = "## A\n\n{{ crisis_line }} {{ practice_name }}\n"
    assert missing_details(source, practice) == {"crisis_line"}
    assert missing_details(default_policy_source(), practice) == {"crisis_line", "practice_website"}


# --- escaping ----------------------------------------------------------------------------


def test_hostile_practice_details_stay_literal_text() -> None:
    practice = replace(
        PRACTICE,
        name=HOSTILE_NAME,
        phone="<script>alert(1)</script>",
        licensing_board='"><img src=x onerror=alert(1)>',
    )
    policy = _render_default(practice)
    tags = {tag for tag, _ in _tags(policy.html)}
    assert not tags & {"b", "script", "img", "a", "em", "code"}
    assert "A*B &lt;b&gt;Care&lt;/b&gt; [x](y) _u_ `c` {{ crisis_line }}" in policy.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in policy.html
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in policy.html
    # The plain text carries the value verbatim, and a value is never re-expanded.
    assert HOSTILE_NAME in policy.text
    assert PRACTICE.crisis_line + " }}" not in policy.text


def test_hostile_value_in_heading_is_escaped() -> None:
    practice = replace(PRACTICE, name="<i>X</i> **Y**")
    policy = render_policy("## Hi {{ practice_name }}\n\nBody.\n", practice)
    assert policy.sections[0].title == "Hi <i>X</i> **Y**"
    assert "<h2" in policy.html
    assert "&lt;i&gt;X&lt;/i&gt; **Y**</h2>" in policy.html


def test_value_in_code_span_is_escaped() -> None:
    practice = replace(PRACTICE, phone="<b>1</b>")
    policy = render_policy("## A\n\nDial `{{ practice_phone }}`.\n", practice)
    assert "<code>&lt;b&gt;1&lt;/b&gt;</code>" in policy.html


def test_raw_html_in_source_is_escaped() -> None:
    source = (
        "# T\n\n<script>alert(1)</script>\n\n## A\n\n"
        'Hi <img src=x onerror="alert(1)"> there.\n\n<div>block</div>\n'
    )
    policy = render_policy(source, PRACTICE)
    assert not {tag for tag, _ in _tags(policy.html)} & {"script", "img", "div"}
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in policy.html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in policy.html


def test_javascript_links_in_source_are_not_links() -> None:
    policy = render_policy("## A\n\n[click](javascript:alert(1))\n", PRACTICE)
    assert not any(tag == "a" for tag, _ in _tags(policy.html))


def test_links_in_source_are_allowed() -> None:
    policy = render_policy("## A\n\nSee [our site](https://example.org/a).\n", PRACTICE)
    assert ("a", {"href": "https://example.org/a"}) in _tags(policy.html)
    assert "our site (https://example.org/a)" in policy.text


def test_placeholder_in_link_address_is_validated() -> None:
    source = "## A\n\n[Email us](mailto:{{ practice_email }}) or [visit]({{ practice_website }}).\n"
    policy = render_policy(source, PRACTICE)
    tags = _tags(policy.html)
    assert ("a", {"href": "mailto:office@quietharbor.example"}) in tags
    assert ("a", {"href": "https://quietharbor.example"}) in tags

    hostile = replace(PRACTICE, website="javascript:alert(1)")
    policy = render_policy(source, hostile)
    hrefs = [attrs.get("href") for tag, attrs in _tags(policy.html) if tag == "a"]
    assert hrefs == ["mailto:office@quietharbor.example"]
    assert "visit" in policy.html


# --- structure ---------------------------------------------------------------------------


def test_sections_anchors_and_html_structure() -> None:
    source = "# My Policy\n\nIntro *text*.\n\n## First Part\n\nOne.\n\n### Detail\n\nTwo.\n"
    source += "\n## Second: Part & More!\n\n- a\n- b\n"
    policy = render_policy(source, PRACTICE)
    assert policy.title == "My Policy"
    assert [(s.anchor, s.title) for s in policy.sections] == [
        ("first-part", "First Part"),
        ("second-part-more", "Second: Part & More!"),
    ]
    assert policy.sections[0].html == "<p>One.</p>\n<h3>Detail</h3>\n<p>Two.</p>\n"
    assert policy.sections[1].html == "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n"
    assert policy.html.startswith("<p>Intro <em>text</em>.</p>\n<section ")
    assert "<h1>" not in policy.html
    assert (
        '<section id="first-part" aria-labelledby="first-part-heading">\n'
        '<h2 id="first-part-heading">First Part</h2>\n'
        "<p>One.</p>" in policy.html
    )
    assert policy.html.count("<section ") == 2
    assert policy.html.count("</section>") == 2


def test_duplicate_and_odd_titles_get_unique_anchors() -> None:
    source = "## Contact\n\na\n\n## Contact\n\nb\n\n## Contact\n\nc\n\n## Contact 2\n\nd\n"
    source += "\n## Contact heading\n\ne\n\n## ¿Qué pasa?\n\nf\n\n## !!!\n\ng\n"
    policy = render_policy(source, PRACTICE)
    anchors = [s.anchor for s in policy.sections]
    assert anchors[:3] == ["contact", "contact-2", "contact-3"]
    assert anchors[5:] == ["que-pasa", "section"]
    ids = re.findall(r'id="([^"]+)"', policy.html)
    assert len(ids) == len(set(ids)), "section and heading ids must be unique"


def test_nested_h2_does_not_start_a_section() -> None:
    policy = render_policy("## Real\n\n> ## Quoted\n\n- ## In list\n", PRACTICE)
    assert [s.title for s in policy.sections] == ["Real"]


def test_missing_title_defaults_to_policy() -> None:
    policy = render_policy("Intro.\n\n## Only\n\nBody.\n", PRACTICE)
    assert policy.title == "Policy"
    assert policy.html.startswith("<p>Intro.</p>\n")


def test_empty_document_is_rejected() -> None:
    for source in ("", "  \n\r\n\t"):
        with pytest.raises(PolicyTemplateError, match="empty"):
            render_policy(source, PRACTICE)


def test_document_without_sections_is_rejected() -> None:
    with pytest.raises(PolicyTemplateError, match="no sections"):
        render_policy("# Title\n\nJust text.\n\n### Not a section\n", PRACTICE)


# --- canonical text and hash -------------------------------------------------------------


def test_hash_is_sha256_of_text() -> None:
    policy = _render_default()
    assert policy.content_hash == hashlib.sha256(policy.text.encode("utf-8")).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", policy.content_hash)


def test_hash_is_stable() -> None:
    assert _render_default() == _render_default()


@pytest.mark.parametrize(
    "field", ["name", "phone", "email", "website", "licensing_board", "crisis_line"]
)
def test_every_practice_detail_changes_the_hash(field: str) -> None:
    changed = replace(PRACTICE, **{field: getattr(PRACTICE, field) + " X"})
    assert _render_default(changed).content_hash != _render_default().content_hash


def test_policy_wording_changes_the_hash() -> None:
    source = default_policy_source()
    edited = source.replace("not fully secure", "not secure")
    assert render_policy(edited, PRACTICE).content_hash != _render_default().content_hash


def test_link_target_changes_the_hash() -> None:
    first = render_policy("## A\n\n[site](https://a.example)\n", PRACTICE)
    second = render_policy("## A\n\n[site](https://b.example)\n", PRACTICE)
    assert first.content_hash != second.content_hash


def test_crlf_and_trailing_whitespace_are_normalised() -> None:
    source = default_policy_source()
    crlf = source.replace("\n", "\r\n")
    trailing = "\n".join(line + " \t" if line else line for line in source.split("\n"))
    base = _render_default()
    for variant in (crlf, source.replace("\n", "\r"), trailing):
        policy = render_policy(variant, PRACTICE)
        assert policy.text == base.text
        assert policy.content_hash == base.content_hash
    assert "\r" not in render_policy(crlf, PRACTICE).html
    assert "\r" not in base.text


def test_text_is_canonical() -> None:
    policy = _render_default()
    assert policy.text.endswith("\n")
    assert not policy.text.endswith("\n\n")
    assert "\n\n\n" not in policy.text
    assert all(line == line.rstrip() for line in policy.text.split("\n"))
    assert policy.text.startswith("# Social Media and Communications Policy\n\n")
    assert "\n## Testimonials\n" in policy.text


def test_rewrapping_source_does_not_change_text() -> None:
    wrapped = "## A\n\nOne two\nthree four.\n"
    unwrapped = "## A\n\nOne two three four.\n"
    assert render_policy(wrapped, PRACTICE).text == render_policy(unwrapped, PRACTICE).text


def test_whitespace_in_practice_details_is_collapsed() -> None:
    messy = replace(PRACTICE, name="  Quiet\r\nHarbor   Counseling ")
    tidy = replace(PRACTICE, name="Quiet Harbor Counseling")
    assert _render_default(messy) == _render_default(tidy)


def test_text_structure_for_lists_quotes_and_code() -> None:
    source = (
        "# T\n\n## S\n\n1. one\n2. two\n   - nested\n\n> quoted\n> line\n\n"
        "```\ncode {{ practice_phone }}\n```\n\nA  \nhard break.\n"
    )
    text = render_policy(source, PRACTICE).text
    assert text == (
        "# T\n\n## S\n\n1. one\n2. two\n   - nested\n\n> quoted line\n\n"
        "    code (555) 010-2030\n\nA\nhard break.\n"
    )
