"""Export files on disk: one folder per job, one NDJSON file per resource type.

Files are written line by line as batches are built, so nothing larger than a batch is ever held
in memory, and read back in fixed-size chunks when an EHR downloads them.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import orjson

CHUNK = 64 * 1024
# Job ids are uuid4 hex; file names are "<ResourceType>.ndjson". Anything else is never a path.
_JOB_ID = re.compile(r"[0-9a-f]{32}")
_FILE_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}\.ndjson")


def is_job_id(value: str) -> bool:
    return _JOB_ID.fullmatch(value) is not None


def job_dir(root: Path, job_id: str) -> Path:
    if not is_job_id(job_id):
        raise ValueError("not an export job id")
    return root / job_id


def file_name(resource_type: str) -> str:
    return f"{resource_type}.ndjson"


def is_file_name(name: str) -> bool:
    return _FILE_NAME.fullmatch(name) is not None


def staging_dir(root: Path, job_id: str, attempt: int) -> Path:
    """Where one attempt writes; renamed to the job's folder only when it is complete, so a
    worker that lost its job (cancelled, or taken over) never writes into the served files."""
    return job_dir(root, job_id).with_name(f"{job_id}.{attempt}.part")


def publish(staging: Path, final: Path) -> None:
    shutil.rmtree(final, ignore_errors=True)
    staging.mkdir(parents=True, exist_ok=True)  # an export with no resources has no files
    staging.rename(final)


def remove_job_files(root: Path, job_id: str) -> None:
    folder = job_dir(root, job_id)
    shutil.rmtree(folder, ignore_errors=True)
    for staging in root.glob(f"{job_id}.*.part"):
        shutil.rmtree(staging, ignore_errors=True)


class NdjsonWriter:
    """Writes resources to `<folder>/<Type>.ndjson`, one compact JSON object per line, counting
    them. A file is created on its first line, so an empty type produces no file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.counts: dict[str, int] = {}
        self._files: dict[str, IO[bytes]] = {}

    def write(self, resource_type: str, resources: list[dict[str, Any]]) -> None:
        if not resources:
            return
        handle = self._files.get(resource_type)
        if handle is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / file_name(resource_type)
            handle = self._files[resource_type] = path.open("wb")
        # orjson: UTF-8, no padding, the same bytes as json.dumps(ensure_ascii=False,
        # separators=(",", ":")) for resources (no floats), several times faster.
        handle.writelines(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in resources)
        self.counts[resource_type] = self.counts.get(resource_type, 0) + len(resources)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def open_for_download(root: Path, job_id: str, name: str) -> IO[bytes] | None:
    """The file opened for reading, or None. Opened before streaming starts, so an expiry
    that deletes the file meanwhile cannot cut a download short (POSIX keeps it readable)."""
    if not is_file_name(name):
        return None
    try:
        return (job_dir(root, job_id) / name).open("rb")
    except (OSError, ValueError):
        return None


def chunks(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := handle.read(CHUNK):
            yield chunk
    finally:
        handle.close()
