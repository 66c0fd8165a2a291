"""Attachments kept outside the database: images and PDFs, their type told by their content
(not by the name a browser sends), at most 10 MB each and 5 per request, stored under
``$QIFU_DATA_DIR/attachments`` by their SHA-256."""

from __future__ import annotations

import hashlib
from pathlib import Path

from qifu import config
from qifu.engine.files import own_tmp
from qifu.service_requests.models import Attachment

MAX_SIZE = 10 * 1024 * 1024
MAX_FILES = 5
SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)


class AttachmentError(ValueError):
    pass


def kind_of(head: bytes) -> str | None:
    for magic, media in SIGNATURES:
        if head.startswith(magic):
            return media
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def folder() -> Path:
    return config.data_dir() / "attachments"


def checked(files, already: int = 0, what: str = "每件诉求", at_most: int = MAX_FILES) -> list[tuple[str, str, bytes]]:
    """Uploaded files as (name, media type, content), or an error naming the file: more than
    ``at_most`` with the ``already`` kept, too large, or not an image or PDF by its content."""
    files = list(files)
    if len(files) + already > at_most:
        raise AttachmentError(f"{what}最多 {at_most} 个附件")
    out = []
    for f in files:
        if f.size > MAX_SIZE:
            raise AttachmentError(f"附件“{f.name}”超过 10 MB")
        data = f.read()
        media = kind_of(data[:16])
        if media is None:
            raise AttachmentError(f"附件“{f.name}”不是图片或 PDF（按文件内容判断）")
        out.append((Path(f.name).name[:200], media, data))
    return out


def store(data: bytes) -> str:
    """The content under its SHA-256 (written once, renamed into place); the digest."""
    digest = hashlib.sha256(data).hexdigest()
    path = folder() / digest[:2] / digest
    if not path.exists():  # two uploads of one document at once each write a name of their own
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = own_tmp(path)
        tmp.write_bytes(data)
        tmp.replace(path)
    return digest


def save_all(req, files) -> list[Attachment]:
    return [Attachment.objects.create(request=req, name=name, content_type=media, size=len(data), sha256=store(data))
            for name, media, data in checked(files, req.attachments.count())]


def open_stored(sha256: str) -> object:
    """The file ``store`` kept under ``sha256``, opened for reading."""
    return (folder() / sha256[:2] / sha256).open("rb")


def open_file(item) -> object:
    return open_stored(item.sha256)
