"""Render a practice's policy template (Markdown with ``{{ placeholder }}`` slots).

Everything here is pure: callers pass the template text in and get HTML, canonical plain
text and a content hash back. The hash is what signed acknowledgements point at, so the
plain text is built to be deterministic for the same template and practice details.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape
from importlib import resources

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode

__all__ = [
    "PLACEHOLDERS",
    "PolicySection",
    "PolicyTemplateError",
    "PracticeDetails",
    "RenderedPolicy",
    "default_policy_source",
    "find_placeholders",
    "missing_details",
    "render_policy",
]

PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "practice_name",
        "practice_phone",
        "practice_email",
        "practice_website",
        "licensing_board",
        "crisis_line",
    }
)

DEFAULT_TITLE = "Policy"
DEFAULT_POLICY_FILE = "default_policy.md"

# Placeholders stay on one line; anything between the braces counts as the name so that a
# typo such as "{{ practice name }}" is reported instead of leaking through as literal text.
_PLACEHOLDER_RE = re.compile(r"\{\{\s*([^{}\n]*?)\s*\}\}")

# Commonmark only, raw HTML off: the template is edited by practice staff and shown to
# clients, so it must never be able to inject markup or scripts.
_MD = MarkdownIt("commonmark", {"html": False})

_PACKAGE = __name__.rpartition(".")[0]


@dataclass(frozen=True)
class PracticeDetails:
    name: str
    phone: str
    email: str
    website: str
    licensing_board: str
    crisis_line: str

    def placeholder_values(self) -> dict[str, str]:
        """Map each placeholder name to its value."""
        return {
            "practice_name": self.name,
            "practice_phone": self.phone,
            "practice_email": self.email,
            "practice_website": self.website,
            "licensing_board": self.licensing_board,
            "crisis_line": self.crisis_line,
        }


@dataclass(frozen=True)
class PolicySection:
    anchor: str
    title: str
    html: str


@dataclass(frozen=True)
class RenderedPolicy:
    """A rendered policy.

    ``html`` holds the optional intro followed by one ``<section>`` per ``##`` heading. The
    ``#`` title heading is *not* in ``html`` (it is ``title``), so pages can place it
    themselves; it *is* in ``text`` and therefore covered by ``content_hash``.
    """

    title: str
    sections: tuple[PolicySection, ...]
    html: str
    text: str
    content_hash: str


class PolicyTemplateError(ValueError):
    """Raised with a message naming the problem (unknown placeholder(s) listed, empty document,
    no sections)."""


def find_placeholders(source: str) -> set[str]:
    """Return the names of all ``{{ name }}`` placeholders in ``source``, known or not."""
    return {match.group(1) for match in _PLACEHOLDER_RE.finditer(source)}


def missing_details(source: str, practice: PracticeDetails) -> set[str]:
    """Placeholders used by ``source`` whose value is blank.

    Rendering does not refuse blank values (an admin preview must still work), but callers
    publishing a policy for signature should check this first: a blank crisis line is harmful.
    """
    values = practice.placeholder_values()
    return {
        name for name in find_placeholders(source) & PLACEHOLDERS if not _clean_value(values[name])
    }


def default_policy_source() -> str:
    """The Markdown of the default policy shipped with the product."""
    return resources.files(_PACKAGE).joinpath(DEFAULT_POLICY_FILE).read_text(encoding="utf-8")


def render_policy(source: str, practice: PracticeDetails) -> RenderedPolicy:
    """Render ``source`` for ``practice``; raise PolicyTemplateError if the template is bad."""
    source = _normalise_source(source)
    if not source.strip():
        raise PolicyTemplateError("The policy is empty: write at least a title and one section.")
    _check_placeholders(source)

    values = {name: _clean_value(value) for name, value in practice.placeholder_values().items()}
    sentinels = _make_sentinels(source)
    # Values go in only after parsing (as sentinels swapped inside tokens) so that a practice
    # name like "A*B [x](y)" stays literal text instead of becoming emphasis or a link.
    marked = _PLACEHOLDER_RE.sub(lambda m: sentinels[m.group(1)], source)
    tokens = _MD.parse(marked)
    by_sentinel = {sentinel: values[name] for name, sentinel in sentinels.items()}
    _substitute(tokens, by_sentinel)
    return _assemble(tokens)


# --- source checks -----------------------------------------------------------------------


def _normalise_source(source: str) -> str:
    # NFC so that visually identical input (composed vs decomposed accents) hashes the same.
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", source)


def _clean_value(value: str) -> str:
    # Practice details are single-line fields; collapsing whitespace keeps the text canonical.
    return unicodedata.normalize("NFC", " ".join(value.split()))


def _check_placeholders(source: str) -> None:
    unknown = find_placeholders(source) - PLACEHOLDERS
    if unknown:
        listed = ", ".join(f"{{{{ {name} }}}}" for name in sorted(unknown))
        known = ", ".join(sorted(PLACEHOLDERS))
        raise PolicyTemplateError(f"Unknown placeholder(s): {listed}. Known placeholders: {known}.")
    leftover = _PLACEHOLDER_RE.sub("", source)
    if "{{" in leftover or "}}" in leftover:
        marker = "{{" if "{{" in leftover else "}}"
        line = leftover[: leftover.index(marker)].count("\n") + 1
        raise PolicyTemplateError(
            f"Malformed placeholder near line {line}: write placeholders as {{{{ name }}}} "
            "on a single line."
        )


def _make_sentinels(source: str) -> dict[str, str]:
    # Lowercase ASCII letters and digits only: Markdown gives them no meaning, the text rule
    # keeps them in one token, and link normalisation (which may lowercase hosts) leaves them
    # untouched. The base is lengthened until it cannot clash with the template itself.
    base = "qzph"
    lowered = source.lower()
    while base in lowered:
        base += "q"
    return {name: f"{base}{index}x" for index, name in enumerate(sorted(PLACEHOLDERS))}


# --- substitution ------------------------------------------------------------------------


def _substitute(tokens: list[Token], by_sentinel: dict[str, str]) -> None:
    pattern = re.compile("|".join(re.escape(s) for s in sorted(by_sentinel, key=len, reverse=True)))

    def fill(text: str) -> str:
        # One pass, so a value that happens to contain a sentinel is never re-expanded.
        return pattern.sub(lambda m: by_sentinel[m.group(0)], text)

    for token in tokens:
        _fill_token(token, fill)
        if token.children:
            token.children = _fill_inline(token.children, fill)


def _fill_token(token: Token, fill: Callable[[str], str]) -> None:
    # The renderer escapes content and attribute values, so plain replacement is safe here.
    token.content = fill(token.content)
    token.info = fill(token.info)
    for key, value in list(token.attrs.items()):
        if isinstance(value, str):
            token.attrs[key] = fill(value)


def _fill_inline(children: list[Token], fill: Callable[[str], str]) -> list[Token]:
    result: list[Token] = []
    dropping_link = False
    for child in children:
        original = dict(child.attrs)
        _fill_token(child, fill)
        if child.children:
            child.children = _fill_inline(child.children, fill)
        if child.type == "link_open":
            href = _safe_url(original.get("href"), child.attrs.get("href"))
            if href is None:
                # A value turned the address into something unsafe (e.g. javascript:): keep the
                # link text but drop the link, as markdown-it does for unsafe addresses.
                dropping_link = True
                continue
            child.attrs["href"] = href
        elif child.type == "link_close" and dropping_link:
            dropping_link = False
            continue
        elif child.type == "image":
            src = _safe_url(original.get("src"), child.attrs.get("src"))
            if src is None:
                alt = Token("text", "", 0)
                alt.content = "".join(c.content for c in child.children or [])
                result.append(alt)
                continue
            child.attrs["src"] = src
        result.append(child)
    return result


def _safe_url(before: object, after: object) -> str | None:
    if not isinstance(after, str):
        return None
    if before == after:
        return after  # untouched by substitution, markdown-it already validated it
    url = _MD.normalizeLink(after)
    return url if _MD.validateLink(url) else None


# --- assembly ----------------------------------------------------------------------------


@dataclass
class _RawSection:
    title_inline: Token
    body: list[Token]


def _assemble(tokens: list[Token]) -> RenderedPolicy:
    intro: list[Token] = []
    title_inline: Token | None = None
    raw_sections: list[_RawSection] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "heading_open" and token.level == 0 and token.tag in ("h1", "h2"):
            inline = tokens[index + 1]
            if token.tag == "h2":
                raw_sections.append(_RawSection(inline, []))
                index += 3
                continue
            if title_inline is None and not raw_sections:
                title_inline = inline
                index += 3
                continue
        (raw_sections[-1].body if raw_sections else intro).append(token)
        index += 1

    if not raw_sections:
        raise PolicyTemplateError(
            "The policy has no sections: start each section with a '## ' heading."
        )

    title = _inline_text(title_inline) if title_inline is not None else ""
    title = title or DEFAULT_TITLE
    anchors = _Anchors()
    sections: list[PolicySection] = []
    html_parts: list[str] = [_render(intro)] if intro else []
    text_blocks: list[str] = [f"# {title}"]
    if intro:
        text_blocks.append(_blocks_text(intro))
    for raw in raw_sections:
        section_title = _inline_text(raw.title_inline)
        anchor = anchors.claim(section_title)
        body_html = _render(raw.body)
        sections.append(PolicySection(anchor=anchor, title=section_title, html=body_html))
        heading_html = _render([raw.title_inline])
        heading_id = _Anchors.heading_id(anchor)
        html_parts.append(
            f'<section id="{escape(anchor)}" aria-labelledby="{escape(heading_id)}">\n'
            f'<h2 id="{escape(heading_id)}">{heading_html}</h2>\n'
            f"{body_html}</section>\n"
        )
        text_blocks.append(f"## {section_title}")
        if raw.body:
            text_blocks.append(_blocks_text(raw.body))

    text = _canonical_text(text_blocks)
    return RenderedPolicy(
        title=title,
        sections=tuple(sections),
        html="".join(html_parts),
        text=text,
        content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def _render(tokens: list[Token]) -> str:
    rendered: str = _MD.renderer.render(tokens, _MD.options, {})
    return rendered


class _Anchors:
    """Hands out unique slugs; each section also reserves the id of its heading."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    @staticmethod
    def heading_id(anchor: str) -> str:
        return f"{anchor}-heading"

    def claim(self, title: str) -> str:
        base = _slugify(title)
        candidate, counter = base, 1
        while candidate in self._used or self.heading_id(candidate) in self._used:
            counter += 1
            candidate = f"{base}-{counter}"
        self._used.update({candidate, self.heading_id(candidate)})
        return candidate


def _slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug or "section"


# --- plain text --------------------------------------------------------------------------

# markdown-it turns NUL into U+FFFD while parsing, so NUL cannot occur in token content.
_SOFTBREAK = "\x00"
_SOFTBREAK_RE = re.compile(r"[ \t]*\x00[ \t]*")


def _canonical_text(blocks: Iterable[str]) -> str:
    text = "\n\n".join(block for block in blocks if block.strip())
    lines = [line.rstrip() for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return text.strip("\n") + "\n"


def _inline_text(inline: Token) -> str:
    return _inline_nodes_text(SyntaxTreeNode([inline], create_root=False).children).strip()


def _blocks_text(tokens: list[Token]) -> str:
    root = SyntaxTreeNode(tokens)
    return "\n".join(_nodes_lines(root.children))


def _nodes_lines(nodes: Iterable[SyntaxTreeNode], *, tight: bool = False) -> list[str]:
    # Blocks are separated by a blank line, like the Markdown they came from, except inside
    # tight lists, where markdown-it also renders them without paragraph breaks.
    lines: list[str] = []
    for node in nodes:
        block = _node_lines(node)
        if not block:
            continue
        if lines and not tight:
            lines.append("")
        lines.extend(block)
    return lines


def _node_lines(node: SyntaxTreeNode) -> list[str]:
    kind = node.type
    if kind == "paragraph":
        return _inline_nodes_text(node.children[0].children).split("\n")
    if kind == "heading":
        marks = "#" * int(node.tag[1:])
        return [f"{marks} {_inline_nodes_text(node.children[0].children).strip()}"]
    if kind in ("bullet_list", "ordered_list"):
        start = node.attrs.get("start", 1)
        number = int(start) if isinstance(start, int | str) else 1
        # markdown-it hides the paragraphs of tight lists; loose lists keep blank lines.
        tight = any(
            child.type == "paragraph" and child.hidden
            for item in node.children
            for child in item.children
        )
        lines: list[str] = []
        for offset, item in enumerate(node.children):
            marker = "- " if kind == "bullet_list" else f"{number + offset}. "
            item_lines = _nodes_lines(item.children, tight=tight) or [""]
            if lines and not tight:
                lines.append("")
            indent = " " * len(marker)
            lines.append(marker + item_lines[0])
            lines.extend(indent + line if line else "" for line in item_lines[1:])
        return lines
    if kind == "blockquote":
        return [f"> {line}" if line else ">" for line in _nodes_lines(node.children)]
    if kind in ("fence", "code_block"):
        return ["    " + line for line in node.content.rstrip("\n").split("\n")]
    if kind == "hr":
        return ["---"]
    return _nodes_lines(node.children)


def _inline_nodes_text(nodes: Iterable[SyntaxTreeNode]) -> str:
    parts: list[str] = []
    for node in nodes:
        kind = node.type
        if kind in ("text", "code_inline"):
            parts.append(node.content)
        elif kind == "softbreak":
            parts.append(_SOFTBREAK)
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind == "link":
            label = _inline_nodes_text(node.children)
            parts.append(label + _link_suffix(label, node.attrs.get("href")))
        elif kind == "image":
            parts.append(f"[image: {_inline_nodes_text(node.children)}]")
        else:
            parts.append(_inline_nodes_text(node.children))
    # Re-wrapping the source, or stray spaces and tabs at line ends, must not change the hash.
    return _SOFTBREAK_RE.sub(" ", "".join(parts))


def _link_suffix(label: str, href: object) -> str:
    # Link targets are part of what the client agreed to, so they are kept in the text unless
    # the label already says the same thing.
    if not isinstance(href, str) or not href or href.startswith("#"):
        return ""
    shown = _MD.normalizeLinkText(href)
    if label.strip() in (shown, shown.removeprefix("mailto:"), shown.removeprefix("tel:")):
        return ""
    return f" ({shown})"
