"""Tesseract OCR through its command-line program (no Python binding needed)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from docflow.pipeline.types import StageError

OCR_TIMEOUT_SECONDS = 120
# Languages tried together when installed; Tesseract slows down with each one added.
PREFERRED_LANGUAGES = ("eng", "deu", "fra", "spa", "rus")
MAX_LANGUAGES = 3


def tesseract_path() -> str | None:
    """The tesseract program, or None when OCR is unavailable on this machine."""
    return shutil.which("tesseract")


@functools.lru_cache(maxsize=4)
def _installed_languages(program: str) -> tuple[str, ...]:
    try:
        result = subprocess.run(
            [program, "--list-langs"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    lines = result.stdout.decode("utf-8", errors="replace").splitlines()
    return tuple(line.strip() for line in lines[1:] if line.strip() and line.strip() != "osd")


def _language_argument(program: str) -> str | None:
    installed = _installed_languages(program)
    chosen = [lang for lang in PREFERRED_LANGUAGES if lang in installed][:MAX_LANGUAGES]
    if not chosen and installed:
        chosen = [installed[0]]
    return "+".join(chosen) or None


def ocr_image(image: bytes | Path, *, timeout: float = OCR_TIMEOUT_SECONDS) -> str:
    """Read the text in an image (PNG, JPEG, TIFF; bytes, or a file that Tesseract reads
    itself). Raises StageError if it cannot."""
    program = tesseract_path()
    if program is None:
        raise StageError("OCR is unavailable on this server, so text cannot be read from images.")
    command = [program, str(image.absolute()) if isinstance(image, Path) else "stdin", "stdout"]
    languages = _language_argument(program)
    if languages:
        command += ["-l", languages]
    # One thread per call: workers already run in parallel, nested threading only thrashes.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        result = subprocess.run(
            command,
            input=None if isinstance(image, Path) else image,
            capture_output=True,
            timeout=timeout,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise StageError("Reading the text from this image took too long.") from exc
    except OSError as exc:
        raise StageError(
            "OCR is unavailable on this server, so text cannot be read from images."
        ) from exc
    if result.returncode != 0:
        raise StageError("This image could not be read.")
    return result.stdout.decode("utf-8", errors="replace")
