"""Whether a data directory's server or worker is running, so that `qifu restore` never
replaces a database under them, nor is one started in the middle of a restore.

`qifu serve` and `qifu worker` each hold a shared lock on ``$QIFU_DATA_DIR/run/in-use.lock``
for as long as they run; the system drops it when the process ends, however it ends, so there
is no stale file to clear after a crash. `qifu restore` takes the lock alone for the whole
restore, and is refused while either holds it; either is refused its start while a restore
holds it. On this machine only: a server on another machine (PostgreSQL shared by several)
holds its own data directory's lock."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from qifu import config


class InUse(Exception):
    pass


def _lock_file() -> IO:
    folder = config.data_dir() / "run"
    folder.mkdir(parents=True, exist_ok=True)
    return (folder / "in-use.lock").open("a+")


def hold(what: str) -> IO:
    """The shared lock of a running ``what`` (`qifu serve`, `qifu worker`): the open file,
    to be kept for the life of the process."""
    f = _lock_file()
    try:
        fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise InUse(f"正在从备份恢复数据库：恢复完成后再启动 {what}") from None
    return f


@contextmanager
def alone() -> Iterator[None]:
    """The lock alone for the block (a restore), or ``InUse`` while a server or worker runs."""
    f = _lock_file()
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise InUse("qifu serve 或 qifu worker 正在使用这个数据目录：请先停止它们，再恢复") from None
    try:
        yield
    finally:
        f.close()
