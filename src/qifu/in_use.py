"""Whether a county's server or worker is running, so that `qifu restore` never replaces a
database under them, nor is one started in the middle of a restore.

`qifu serve` and `qifu worker` each hold a shared lock on ``$QIFU_DATA_DIR/run/in-use.lock``
for as long as they run; the system drops it when the process ends, however it ends, so there
is no stale file to clear after a crash. `qifu restore` takes the lock alone for the whole
restore, and is refused while either holds it; either is refused its start while a restore
holds it.

On PostgreSQL, which servers on several machines may share, each also holds a shared advisory
lock of the database (``ADVISORY_KEY``) on a connection of its own, and a restore takes it
alone: a server or worker on another machine keeps a restore off too. PostgreSQL drops such a
lock when its connection ends, however it ends; a lost connection (the database restarted)
loses it, until the process starts again."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, NamedTuple

from qifu import config

# the advisory lock's key: "qifu" in ASCII. A lock is of one database, so counties sharing a
# PostgreSQL server in databases of their own do not meet.
ADVISORY_KEY = 0x71696675


class InUse(Exception):
    pass


class Held(NamedTuple):
    """What a running server or worker keeps for its life: the open lock file, and on
    PostgreSQL the connection that holds the advisory lock."""

    file: IO
    session: object | None


def _lock_file() -> IO:
    folder = config.data_dir() / "run"
    folder.mkdir(parents=True, exist_ok=True)
    return (folder / "in-use.lock").open("a+")


def _session():
    """A connection of its own to this PostgreSQL database, in autocommit (None on SQLite): an
    advisory lock taken on it lasts as long as the connection, whatever Django does with its own."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    session = connection.Database.connect(**connection.get_connection_params())
    session.autocommit = True
    return session


def _granted(session, function: str) -> bool:
    with session.cursor() as cur:
        cur.execute(f"SELECT {function}(%s)", [ADVISORY_KEY])
        return bool(cur.fetchone()[0])


def hold(what: str) -> Held:
    """The shared lock of a running ``what`` (`qifu serve`, `qifu worker`), to be kept for the
    life of the process."""
    f = _lock_file()
    try:
        fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise InUse(f"正在从备份恢复数据库：恢复完成后再启动 {what}") from None
    session = _session()
    if session is not None and not _granted(session, "pg_try_advisory_lock_shared"):
        session.close()
        f.close()
        raise InUse(f"另一台机器正在从备份恢复这个数据库：恢复完成后再启动 {what}")
    return Held(f, session)


@contextmanager
def alone() -> Iterator[None]:
    """The lock alone for the block (a restore), or ``InUse`` while a server or worker runs,
    here or, on PostgreSQL, on another machine."""
    f = _lock_file()
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise InUse("qifu serve 或 qifu worker 正在使用这个数据目录：请先停止它们，再恢复") from None
    session = None
    try:
        session = _session()
        if session is not None and not _granted(session, "pg_try_advisory_lock"):
            raise InUse("另一台机器上的 qifu serve 或 qifu worker 正在使用这个数据库：请先停止它们，再恢复")
        yield
    finally:
        if session is not None:
            session.close()
        f.close()
