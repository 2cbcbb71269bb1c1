"""Deterministic PDF receipt for a signed acknowledgement.

`render_receipt` is a pure function: the same `ReceiptData` (and the same fonts and fpdf2
version) always produces byte-identical output. Nothing is read from the clock or from a random
source: the PDF creation date comes from `ReceiptData.generated_from` and the PDF /ID is fpdf2's
default, an MD5 of the document body plus that creation date.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import WrapMode, XPos, YPos
from fpdf.fonts import TTFFont

__all__ = ["ReceiptData", "ReceiptSection", "ReceiptSignature", "render_receipt"]


@dataclass(frozen=True)
class ReceiptSignature:
    """One signature on the acknowledgement."""

    full_name: str  # as typed by the signer
    role: str  # human label, e.g. "Client", "Therapist (countersignature)"
    meaning: str  # what the signature means, e.g. "Acknowledges the ... Policy, version 3"
    signed_at: datetime  # timezone-aware UTC
    esign_consent: bool  # consented to sign electronically


@dataclass(frozen=True)
class ReceiptSection:
    """A titled block of plain-text lines (e.g. the client's contact choices)."""

    heading: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class ReceiptData:
    """Everything printed on a receipt. Build it from stored records, never from now()."""

    practice_name: str
    practice_contact: str  # one line: phone, email, website
    client_name: str
    reference: str  # acknowledgement reference id (short, non-identifying)
    policy_title: str
    policy_version: int
    policy_hash: str  # hex sha256 of the policy text
    policy_published_at: datetime
    sections: tuple[ReceiptSection, ...]
    signatures: tuple[ReceiptSignature, ...]
    countersignature_pending: bool  # True -> print "Therapist countersignature: pending"
    generated_from: datetime  # time of the latest record reflected; used as PDF creation date
    footer_lines: tuple[str, ...] = ()  # e.g. how to withdraw consent, paper-copy notice


# Searched in this order; the first directory holding DejaVuSans.ttf wins.
FONT_DIRS: tuple[Path, ...] = (
    # Fetched at build time (hatch_build.py) and shipped in the wheel: the same bytes everywhere.
    Path(__file__).resolve().parent / "fonts",
    Path("/usr/share/fonts/truetype/dejavu"),  # Debian, Ubuntu
    Path("/usr/share/fonts/dejavu-sans-fonts"),  # Fedora, RHEL
    Path("/usr/share/fonts/dejavu"),  # older Fedora, openSUSE
    Path("/usr/share/fonts/TTF"),  # Arch
    Path("/usr/local/share/fonts"),
    Path("/Library/Fonts"),  # macOS
)
REGULAR_FONT_FILE = "DejaVuSans.ttf"
BOLD_FONT_FILE = "DejaVuSans-Bold.ttf"

# Any single field longer than this is cut and marked, so hostile input (a 10,000-character
# name) cannot blow up rendering time or page count.
MAX_FIELD_CHARS = 2000
MAX_FOOTER_REFERENCE_CHARS = 40
TRUNCATION_MARK = " [truncated]"

_LABEL_WIDTH = 42.0  # mm
_LINE_H = 5.5  # mm, body text line height

# Typographic characters that latin-1 lacks but that have obvious ASCII spellings; only used
# with the core-font fallback.
_LATIN1_FRIENDLY = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2022": "-",
        "\u2026": "...",
        "\u2212": "-",
    }
)


@dataclass(frozen=True)
class _Fonts:
    family: str
    regular: Path | None  # None -> fpdf2 core font (Helvetica, latin-1 only)
    bold: Path | None


def _find_fonts(font_dir: Path | None) -> _Fonts:
    """Pick fonts deterministically: `font_dir` alone if given, else the first of FONT_DIRS."""
    dirs = (Path(font_dir),) if font_dir is not None else FONT_DIRS
    for directory in dirs:
        regular = directory / REGULAR_FONT_FILE
        if regular.is_file():
            bold = directory / BOLD_FONT_FILE
            return _Fonts("dejavu", regular, bold if bold.is_file() else regular)
    return _Fonts("helvetica", None, None)


def _utc(moment: datetime) -> datetime:
    """Normalise to UTC; a naive datetime is taken to be UTC (never the host's local zone)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _format_utc(moment: datetime) -> str:
    """Format as 'YYYY-MM-DD HH:MM:SS UTC' (zero-padded, locale-independent)."""
    m = _utc(moment)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d} {m.hour:02d}:{m.minute:02d}:{m.second:02d} UTC"


class _ReceiptPDF(FPDF):
    """FPDF with a page footer: reference and 'Page N of M'."""

    def __init__(self, family: str, footer_reference: str, total_pages: int | None) -> None:
        super().__init__(orientation="portrait", unit="mm", format="letter")
        self._family = family
        self.footer_reference = footer_reference
        self._total_pages = total_pages

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(self._family, "", 8)
        self.set_text_color(110)
        total = str(self._total_pages) if self._total_pages is not None else "?"
        text = f"Page {self.page_no()} of {total}"
        if self.footer_reference:
            text = f"Reference {self.footer_reference} - {text}"
        self.cell(0, 5, text, align="C")
        self.set_text_color(0)


class _Writer:
    """Lays out one receipt on a fresh `_ReceiptPDF`."""

    def __init__(self, fonts: _Fonts, data: ReceiptData, total_pages: int | None) -> None:
        self.fonts = fonts
        self.data = data
        self.covered: frozenset[int] | None = None  # None -> core font, latin-1 only
        self.pdf = _ReceiptPDF(fonts.family, "", total_pages)
        pdf = self.pdf
        if fonts.regular is not None and fonts.bold is not None:
            pdf.add_font(fonts.family, "", fonts.regular)
            pdf.add_font(fonts.family, "B", fonts.bold)
            # A character is printable only if both faces have a glyph for it.
            regular, bold = pdf.fonts[fonts.family], pdf.fonts[fonts.family + "B"]
            if isinstance(regular, TTFFont) and isinstance(bold, TTFFont):
                self.covered = frozenset(regular.cmap.keys() & bold.cmap.keys())
        reference = self.clean(data.reference, limit=MAX_FOOTER_REFERENCE_CHARS)
        pdf.footer_reference = reference.removesuffix(TRUNCATION_MARK)
        if reference.endswith(TRUNCATION_MARK):
            pdf.footer_reference += "..."
        # User text must never be rewritten by fpdf2: "{nb}" would otherwise become a page count.
        # An empty alias disables the substitution (fpdf2 checks it for truthiness).
        pdf.alias_nb_pages("")
        pdf.set_margins(left=20, top=18, right=20)
        pdf.set_auto_page_break(auto=True, margin=20)
        pdf.set_creation_date(_utc(data.generated_from))
        pdf.set_title("Signed acknowledgement")
        pdf.set_creator("portal_signature receipt")
        pdf.set_lang("en-US")

    def can_encode(self, ch: str) -> bool:
        """Whether the chosen font can print `ch`."""
        if self.covered is None:
            # Core-font fallback: Helvetica only encodes latin-1, so every other character is
            # printed as "?" (after mapping a few typographic characters to ASCII in `clean`).
            return ord(ch) < 0x100
        return ord(ch) in self.covered

    def clean(self, value: object, limit: int = MAX_FIELD_CHARS) -> str:
        """Turn any input into a single printable line for the chosen font."""
        text = value if isinstance(value, str) else str(value)
        # Lone surrogates cannot be encoded at all; make them "?" first.
        text = text.encode("utf-8", "replace").decode("utf-8")
        text = unicodedata.normalize("NFC", text)
        if self.fonts.regular is None:
            text = text.translate(_LATIN1_FRIENDLY)
        truncated = len(text) > limit
        if truncated:
            text = text[:limit]
        out: list[str] = []
        for ch in text:
            category = unicodedata.category(ch)
            if ch in "\t\n\r\v\f\x1c\x1d\x1e\x85" or category in ("Zl", "Zp", "Zs"):
                out.append(" ")
            elif category in ("Cc", "Cf"):
                continue  # control, bidi-override, zero-width and soft-hyphen characters
            elif category in ("Co", "Cn", "Cs") or not self.can_encode(ch):
                out.append("?")
            else:
                out.append(ch)
        result = "".join(out).strip()
        if truncated:
            result = result.rstrip() + TRUNCATION_MARK
        return result

    # -- layout primitives -------------------------------------------------------------

    def text(
        self,
        value: str,
        size: float = 10,
        bold: bool = False,
        indent: float = 0,
        line_h: float = _LINE_H,
        wrapmode: WrapMode = WrapMode.WORD,
    ) -> None:
        pdf = self.pdf
        pdf.set_font(self.fonts.family, "B" if bold else "", size)
        pdf.set_x(pdf.l_margin + indent)
        pdf.multi_cell(
            pdf.epw - indent,
            line_h,
            self.clean(value),
            align="L",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
            wrapmode=wrapmode,
        )

    def field(
        self, label: str, value: str, size: float = 10, wrapmode: WrapMode = WrapMode.WORD
    ) -> None:
        pdf = self.pdf
        if pdf.will_page_break(_LINE_H):
            pdf.add_page()
        pdf.set_font(self.fonts.family, "B", 10)
        pdf.set_x(pdf.l_margin)
        pdf.cell(_LABEL_WIDTH, _LINE_H, label)
        pdf.set_font(self.fonts.family, "", size)
        pdf.multi_cell(
            pdf.epw - _LABEL_WIDTH,
            _LINE_H,
            self.clean(value) or "(none)",
            align="L",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
            wrapmode=wrapmode,
        )

    def heading(self, value: str) -> None:
        pdf = self.pdf
        # Keep a heading together with at least the first couple of lines below it.
        if pdf.will_page_break(3 * _LINE_H + 4):
            pdf.add_page()
        pdf.ln(4)
        self.text(value, size=12, bold=True, line_h=7)

    def rule(self) -> None:
        pdf = self.pdf
        pdf.ln(2)
        pdf.set_draw_color(170)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
        pdf.set_draw_color(0)
        pdf.ln(2)

    # -- document ----------------------------------------------------------------------

    def write(self) -> _ReceiptPDF:
        pdf, data = self.pdf, self.data
        pdf.add_page()
        self.text("Signed acknowledgement", size=18, bold=True, line_h=9)
        pdf.ln(1)
        self.text(data.practice_name, size=12, bold=True, line_h=6)
        self.text(data.practice_contact, size=9, line_h=5)
        self.rule()

        self.field("Client", data.client_name)
        self.field("Reference", data.reference)
        self.field("Policy", data.policy_title)
        self.field("Version", str(data.policy_version))
        self.field("Published", _format_utc(data.policy_published_at))
        # 9 pt keeps a 64-digit hash on one line; anything longer wraps by character.
        self.field("Policy SHA-256", data.policy_hash, size=9, wrapmode=WrapMode.CHAR)

        for section in data.sections:
            self.heading(section.heading)
            for line in section.lines:
                self.text(line, indent=4)

        self.heading("Signatures")
        if not data.signatures:
            self.text("No signatures recorded.")
        for index, signature in enumerate(data.signatures):
            if index:
                self.rule()
            if pdf.will_page_break(6 * _LINE_H):
                pdf.add_page()
            name = signature.full_name if str(signature.full_name).strip() else "(no name given)"
            self.text(name, size=11, bold=True, line_h=6)
            self.field("Role", signature.role)
            self.field("Meaning", signature.meaning)
            self.text(f"Signed electronically on {_format_utc(signature.signed_at)}")
            if signature.esign_consent:
                self.text("Consented to sign electronically: yes")
            else:
                self.text("Consented to sign electronically: NO (consent not recorded)")

        if data.countersignature_pending:
            pdf.ln(3)
            self.text("Therapist countersignature: pending", bold=True)

        if data.footer_lines:
            self.rule()
            pdf.set_text_color(70)
            for line in data.footer_lines:
                self.text(line, size=9, line_h=4.8)
            pdf.set_text_color(0)
        return pdf


def render_receipt(data: ReceiptData, font_dir: Path | None = None) -> bytes:
    """Render `data` as a Letter-size PDF and return its bytes.

    Deterministic: no clock, no randomness; the creation date is `data.generated_from`.
    Fonts: DejaVu Sans from `font_dir` if given (that directory only), else from FONT_DIRS;
    with no DejaVu Sans found, fpdf2's core Helvetica is used and characters outside latin-1
    are printed as "?". Any string input is accepted: control characters are dropped or turned
    into spaces, unprintable characters become "?" and fields over MAX_FIELD_CHARS are cut.
    """
    fonts = _find_fonts(font_dir)
    # Two passes so the footer can say "Page N of M": the first pass only counts pages (the
    # footer sits in the bottom margin, so it cannot change the body layout).
    first = _Writer(fonts, data, total_pages=None).write()
    final = _Writer(fonts, data, total_pages=first.pages_count).write()
    return bytes(final.output())
