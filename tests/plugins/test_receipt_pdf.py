"""Tests for the deterministic signed-acknowledgement PDF receipt."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pypdf import PdfReader

from portal_signature.receipt_pdf import (
    FONT_DIRS,
    MAX_FIELD_CHARS,
    TRUNCATION_MARK,
    ReceiptData,
    ReceiptSection,
    ReceiptSignature,
    render_receipt,
)

POLICY_HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
CLIENT_MEANING = "Acknowledges the Social Media and Communications Policy, version 3"
THERAPIST_MEANING = "Countersigns the acknowledgement as the treating therapist"
CONTACT_LINES = (
    "Cell +1 555-0101: voicemail OK, name the practice only",
    "Email client@example.org: appointment reminders only",
    "Text messages: not allowed",
)
FOOTER_LINES = (
    "To withdraw consent, visit https://portal.example/withdraw/ACK-7F3K2Q",
    "A paper copy is available on request.",
)

FOOTER_RE = re.compile(r"(Reference .* - )?Page \d+ of \d+")


def _dejavu_dir() -> Path | None:
    for directory in FONT_DIRS:
        if (directory / "DejaVuSans.ttf").is_file():
            return directory
    return None


@pytest.fixture
def dejavu() -> Path:
    """The DejaVu fonts, which `make install` fetches: missing, these tests fail (never skip)."""
    directory = _dejavu_dir()
    if directory is None:
        pytest.fail("DejaVu Sans is missing: run `make install` (python hatch_build.py fetches it)")
    return directory


needs_dejavu = pytest.mark.usefixtures("dejavu")


def client_signature(name: str = "Zoë Ñúñez") -> ReceiptSignature:
    return ReceiptSignature(
        full_name=name,
        role="Client",
        meaning=CLIENT_MEANING,
        signed_at=datetime(2025, 2, 1, 14, 5, 9, tzinfo=UTC),
        esign_consent=True,
    )


def therapist_signature() -> ReceiptSignature:
    return ReceiptSignature(
        full_name="Dr. Siobhán O'Brien",
        role="Therapist (countersignature)",
        meaning=THERAPIST_MEANING,
        signed_at=datetime(2025, 2, 3, 9, 0, 0, tzinfo=UTC),
        esign_consent=True,
    )


def sample_data() -> ReceiptData:
    """Realistic data; also imported by the subprocess determinism test."""
    return ReceiptData(
        practice_name="Riverbend Counseling",
        practice_contact="+1 555-0100 · hello@riverbend.example · riverbend.example",
        client_name="Zoë Ñúñez",
        reference="ACK-7F3K2Q",
        policy_title="Social Media and Communications Policy",
        policy_version=3,
        policy_hash=POLICY_HASH,
        policy_published_at=datetime(2025, 1, 15, 9, 30, tzinfo=UTC),
        sections=(
            ReceiptSection("How we may contact you", CONTACT_LINES),
            ReceiptSection("Testimonials", ("I do not consent to any testimonial use.",)),
        ),
        signatures=(
            client_signature(),
            ReceiptSignature(
                full_name="Nguyễn Thị Minh",
                role="Adult seen together",
                meaning=CLIENT_MEANING,
                signed_at=datetime(2025, 2, 1, 14, 7, 0, tzinfo=UTC),
                esign_consent=False,
            ),
        ),
        countersignature_pending=True,
        generated_from=datetime(2025, 2, 1, 14, 7, 0, tzinfo=UTC),
        footer_lines=FOOTER_LINES,
    )


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def body_text(pdf: bytes) -> str:
    """Like `pdf_text`, without the per-page footer, so text can run across page breaks."""
    reader = PdfReader(io.BytesIO(pdf))
    lines = [
        line
        for page in reader.pages
        for line in page.extract_text().splitlines()
        if not FOOTER_RE.fullmatch(line)
    ]
    return "\n".join(lines)


def squashed(text: str) -> str:
    """Text with all whitespace removed, for values that may wrap across lines."""
    return "".join(text.split())


# -- determinism -------------------------------------------------------------------------


def test_same_data_renders_identical_bytes() -> None:
    first = render_receipt(sample_data())
    second = render_receipt(sample_data())
    assert first.startswith(b"%PDF-")
    assert first == second


def test_identical_bytes_in_a_separate_process() -> None:
    here = render_receipt(sample_data())
    script = textwrap.dedent(
        """
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("receipt_tests", sys.argv[1])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        from portal_signature.receipt_pdf import render_receipt
        sys.stdout.buffer.write(render_receipt(module.sample_data()))
        """
    )
    # A different hash seed and local time zone must not change a single byte.
    env = {**os.environ, "PYTHONHASHSEED": "12345", "TZ": "Pacific/Auckland"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(Path(__file__).resolve())],
        capture_output=True,
        check=True,
        env=env,
        timeout=120,
    )
    assert result.stdout == here


def test_creation_date_comes_from_generated_from() -> None:
    data = sample_data()
    pdf = render_receipt(data)
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.metadata is not None
    assert str(reader.metadata["/CreationDate"]) == "D:20250201140700Z"
    later = dataclasses.replace(data, generated_from=data.generated_from + timedelta(seconds=1))
    assert render_receipt(later) != pdf


def test_file_id_is_content_derived() -> None:
    pdf = render_receipt(sample_data())
    trailer_ids = [line for line in pdf.splitlines() if line.startswith(b"/ID [")]
    assert len(trailer_ids) == 1
    other = render_receipt(dataclasses.replace(sample_data(), reference="ACK-OTHER1"))
    assert trailer_ids[0] not in other


def test_naive_and_offset_datetimes_are_treated_as_utc() -> None:
    data = sample_data()
    naive = dataclasses.replace(
        data,
        generated_from=data.generated_from.replace(tzinfo=None),
        policy_published_at=data.policy_published_at.replace(tzinfo=None),
    )
    assert render_receipt(naive) == render_receipt(data)

    plus_two = timezone(timedelta(hours=2))
    signature = dataclasses.replace(
        client_signature(), signed_at=datetime(2025, 2, 1, 16, 5, 9, tzinfo=plus_two)
    )
    text = pdf_text(render_receipt(dataclasses.replace(data, signatures=(signature,))))
    assert "Signed electronically on 2025-02-01 14:05:09 UTC" in text


# -- content -----------------------------------------------------------------------------


def test_letter_page_size() -> None:
    reader = PdfReader(io.BytesIO(render_receipt(sample_data())))
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (612, 792)


def test_text_content() -> None:
    text = pdf_text(render_receipt(sample_data()))
    assert "Signed acknowledgement" in text
    assert "Riverbend Counseling" in text
    assert "ACK-7F3K2Q" in text
    assert "Social Media and Communications Policy" in text
    assert "Version 3" in text
    assert "Published 2025-01-15 09:30:00 UTC" in text
    assert POLICY_HASH in squashed(text)
    assert "How we may contact you" in text
    for line in CONTACT_LINES:
        assert line in text
    assert "I do not consent to any testimonial use." in text
    assert text.count(CLIENT_MEANING) == 2
    assert "Client" in text
    assert "Adult seen together" in text
    assert "Signed electronically on 2025-02-01 14:05:09 UTC" in text
    assert "Signed electronically on 2025-02-01 14:07:00 UTC" in text
    assert "Consented to sign electronically: yes" in text
    assert "Consented to sign electronically: NO" in text
    assert "Therapist countersignature: pending" in text
    for line in FOOTER_LINES:
        assert line in text
    assert "Page 1 of 1" in text


@needs_dejavu
def test_unicode_names() -> None:
    data = dataclasses.replace(
        sample_data(),
        client_name="Nguyễn Thị Minh",
        signatures=(
            client_signature("Zoë Ñúñez"),
            client_signature("Nguyễn Thị Minh"),
            client_signature("Seán O'Brien-Łukasiewicz"),
            client_signature("Ελένη Παπαδοπούλου"),
            client_signature("Дмитрий Иванов"),
        ),
    )
    text = pdf_text(render_receipt(data))
    for name in (
        "Zoë Ñúñez",
        "Nguyễn Thị Minh",
        "Seán O'Brien-Łukasiewicz",
        "Ελένη Παπαδοπούλου",
        "Дмитрий Иванов",
    ):
        assert name in text


@needs_dejavu
def test_decomposed_unicode_is_normalised() -> None:
    decomposed = "Zoe\u0308 N\u0303u\u0301n\u0303ez"  # "Zoë Ñúñez" in NFD
    text = pdf_text(render_receipt(dataclasses.replace(sample_data(), client_name=decomposed)))
    assert "Client Zoë Ñúñez" in text


def test_no_signatures() -> None:
    text = pdf_text(render_receipt(dataclasses.replace(sample_data(), signatures=())))
    assert "No signatures recorded." in text


# -- hostile and odd input ---------------------------------------------------------------


def test_html_and_markup_are_printed_literally() -> None:
    hostile = "<script>alert(1)</script>"
    data = dataclasses.replace(
        sample_data(),
        client_name=hostile,
        sections=(ReceiptSection("<b>Heading</b>", ("**not bold** {nb} <i>x</i> & %s",)),),
        signatures=(client_signature(hostile),),
    )
    text = pdf_text(render_receipt(data))
    assert f"Client {hostile}" in text
    assert text.count(hostile) >= 2
    assert "<b>Heading</b>" in text
    assert "**not bold** {nb} <i>x</i> & %s" in text


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "\x00\x01\x07\x1b[31m",
        "line one\nline two\r\nline three\tend",
        "\u202eevil\u202c\u200b\u200d\ufeff\u00ad",
        "\ud800 lone surrogate \udfff",
        "\U0010ffff \ue000 \U000e0001 unassigned/private",
        "😀🧑‍⚕️ 漢字 עברית العربية",
        "(unbalanced ) \\ parens ( \\) %% /Name <</Type>>",
        "{nb}{nb}",
    ],
)
def test_any_string_renders(value: str) -> None:
    signature = ReceiptSignature(value, value, value, datetime(2025, 1, 1, tzinfo=UTC), True)
    data = ReceiptData(
        practice_name=value,
        practice_contact=value,
        client_name=value,
        reference=value,
        policy_title=value,
        policy_version=-1,
        policy_hash=value,
        policy_published_at=datetime(2025, 1, 1, tzinfo=UTC),
        sections=(ReceiptSection(value, (value, value)),),
        signatures=(signature,),
        countersignature_pending=False,
        generated_from=datetime(2025, 1, 1, tzinfo=UTC),
        footer_lines=(value,),
    )
    pdf = render_receipt(data)
    assert pdf == render_receipt(data)
    assert "Signed acknowledgement" in pdf_text(pdf)


def test_any_string_renders_with_fallback_font(tmp_path: Path) -> None:
    value = "\x00<b>Zoë</b> \ud800 Nguyễn 😀 \u202e{nb}\n"
    data = dataclasses.replace(
        sample_data(),
        client_name=value,
        reference=value,
        signatures=(client_signature(value),),
    )
    text = pdf_text(render_receipt(data, font_dir=tmp_path))
    assert "Client <b>Zoë</b> ? Nguy?n ? {nb}" in text


def test_very_long_input_is_truncated_without_raising() -> None:
    long_word = "A" * 10_000
    long_words = " ".join(["Bartholomew"] * 1_000)
    data = dataclasses.replace(
        sample_data(),
        client_name=long_word,
        reference="R" * 10_000,
        policy_hash="f" * 10_000,
        signatures=(client_signature(long_words),),
    )
    pdf = render_receipt(data)
    text = body_text(pdf)
    flat = squashed(text)
    assert "A" * MAX_FIELD_CHARS + squashed(TRUNCATION_MARK) in flat
    assert "A" * (MAX_FIELD_CHARS + 1) not in flat
    assert "f" * MAX_FIELD_CHARS + squashed(TRUNCATION_MARK) in flat
    assert "R" * MAX_FIELD_CHARS + squashed(TRUNCATION_MARK) in flat
    footer = pdf_text(pdf).splitlines()[-1]
    assert footer.startswith("Reference " + "R" * 40 + "... - Page ")
    assert "Bartholomew Bartholomew" in text
    assert flat.count("[truncated]") == 4  # name, reference, hash, signer name
    assert "Therapist countersignature: pending" in text


def test_many_lines_flow_onto_numbered_pages() -> None:
    lines = tuple(f"Contact choice number {i}" for i in range(300))
    data = dataclasses.replace(sample_data(), sections=(ReceiptSection("Choices", lines),))
    reader = PdfReader(io.BytesIO(render_receipt(data)))
    pages = len(reader.pages)
    assert pages > 1
    for number, page in enumerate(reader.pages, start=1):
        assert f"Page {number} of {pages}" in page.extract_text()
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Contact choice number 0" in text
    assert "Contact choice number 299" in text


# -- countersignature --------------------------------------------------------------------


def test_countersignature_pending() -> None:
    text = pdf_text(render_receipt(sample_data()))
    assert "Therapist countersignature: pending" in text
    assert "Therapist (countersignature)" not in text


def test_countersignature_present() -> None:
    data = dataclasses.replace(
        sample_data(),
        signatures=(client_signature(), therapist_signature()),
        countersignature_pending=False,
        generated_from=datetime(2025, 2, 3, 9, 0, 0, tzinfo=UTC),
    )
    text = pdf_text(render_receipt(data))
    assert "pending" not in text
    assert "Dr. Siobhán O'Brien" in text
    assert "Therapist (countersignature)" in text
    assert THERAPIST_MEANING in text
    assert "Signed electronically on 2025-02-03 09:00:00 UTC" in text


# -- fonts -------------------------------------------------------------------------------


def test_fallback_core_font_when_no_ttf_found(tmp_path: Path) -> None:
    data = dataclasses.replace(sample_data(), client_name="Nguyễn Thị Minh")
    pdf = render_receipt(data, font_dir=tmp_path)
    assert pdf == render_receipt(data, font_dir=tmp_path)
    assert b"/BaseFont /Helvetica" in pdf
    assert b"DejaVu" not in pdf
    text = pdf_text(pdf)
    assert "Riverbend Counseling" in text
    assert "Zoë Ñúñez" in text  # latin-1 survives
    assert "Client Nguy?n Th? Minh" in text  # the rest becomes "?"
    assert "Version 3" in text
    assert POLICY_HASH in squashed(text)
    for line in CONTACT_LINES:
        assert line in text
    assert "Therapist countersignature: pending" in text


@needs_dejavu
def test_font_dir_override_is_used(tmp_path: Path) -> None:
    source = _dejavu_dir()
    assert source is not None
    shutil.copy(source / "DejaVuSans.ttf", tmp_path / "DejaVuSans.ttf")
    # No bold face in the directory: the regular face is used for bold text too.
    pdf = render_receipt(sample_data(), font_dir=tmp_path)
    assert b"DejaVuSans" in pdf
    assert b"DejaVuSans-Bold" not in pdf
    text = pdf_text(pdf)
    assert "Nguyễn Thị Minh" in text
    assert pdf == render_receipt(sample_data(), font_dir=tmp_path)


@needs_dejavu
def test_default_font_is_dejavu() -> None:
    pdf = render_receipt(sample_data())
    assert b"DejaVuSans" in pdf
    assert pdf == render_receipt(sample_data(), font_dir=_dejavu_dir())


def test_the_fonts_shipped_with_the_package_come_first() -> None:
    """The build fetches DejaVu into the package (make install, the wheel, the image), so every
    machine renders a receipt from the same font bytes."""
    from portal_signature import receipt_pdf

    shipped = Path(receipt_pdf.__file__).parent / "fonts"
    assert (shipped / "DejaVuSans.ttf").is_file(), "run `python hatch_build.py` (make install)"
    fonts = receipt_pdf._find_fonts(None)
    assert fonts.family == "dejavu" and fonts.regular == shipped / "DejaVuSans.ttf"
