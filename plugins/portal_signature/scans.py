"""Scanned paper acknowledgements: which files are accepted, judged by their first bytes.

The browser's declared type and the file name are not trusted: a file is a PDF, PNG or JPEG
because it starts like one.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class ScanKind:
    magic: bytes
    content_type: str
    extension: str
    label: str


KINDS: tuple[ScanKind, ...] = (
    ScanKind(b"%PDF-", "application/pdf", "pdf", "PDF"),
    ScanKind(b"\x89PNG\r\n\x1a\n", "image/png", "png", "PNG image"),
    ScanKind(b"\xff\xd8\xff", "image/jpeg", "jpg", "JPEG image"),
)
ACCEPT = ".pdf,.png,.jpg,.jpeg,application/pdf,image/png,image/jpeg"
FILE_NAME_MAX = 120


def sniff(content: bytes) -> ScanKind | None:
    return next((kind for kind in KINDS if content.startswith(kind.magic)), None)


def extension_for(content_type: str) -> str:
    return next((k.extension for k in KINDS if k.content_type == content_type), "bin")


def clean_file_name(raw: str | None) -> str:
    """The uploaded name for display: its last path part, printable, shortened."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in "CZ" or ch == " ")
    name = " ".join(name.split())
    return name[:FILE_NAME_MAX] or "scan"


def size_words(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{max(1, size // 1024)} KB"
