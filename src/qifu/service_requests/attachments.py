"""Attachments kept outside the database: images and PDFs, their type told by their content
(not by the name a browser sends), at most 10 MB each and 5 per request, stored under
``$QIFU_DATA_DIR/attachments`` by their SHA-256."""

from __future__ import annotations

import hashlib
from pathlib import Path

from qifu import config
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


def save_all(req, files) -> list[Attachment]:
    files = list(files)
    if len(files) + req.attachments.count() > MAX_FILES:
        raise AttachmentError(f"每件诉求最多 {MAX_FILES} 个附件")
    checked = []
    for f in files:
        if f.size > MAX_SIZE:
            raise AttachmentError(f"附件“{f.name}”超过 10 MB")
        data = f.read()
        media = kind_of(data[:16])
        if media is None:
            raise AttachmentError(f"附件“{f.name}”不是图片或 PDF（按文件内容判断）")
        checked.append((f.name, media, data))
    out = []
    for name, media, data in checked:
        digest = hashlib.sha256(data).hexdigest()
        path = folder() / digest[:2] / digest
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        out.append(Attachment.objects.create(request=req, name=Path(name).name[:200], content_type=media,
                                             size=len(data), sha256=digest))
    return out


def open_file(item: Attachment):
    return (folder() / item.sha256[:2] / item.sha256).open("rb")
