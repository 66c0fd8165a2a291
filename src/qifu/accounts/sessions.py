"""Database sessions (Django's), read with one prepared statement.

Every request of the portal's self-check reads its session; building the ORM query cost more
than the database's answer. Writing, expiry and clearing stay Django's.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        if not self.session_key:  # the key's shape is checked by the session_key setter
            return None
        connection = connections[router.db_for_read(self.model)]
        with connection.cursor() as cur:
            cur.execute(f"SELECT session_data FROM {self.model._meta.db_table} "
                        "WHERE session_key = %s AND expire_date > %s",
                        [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())])
            row = cur.fetchone()
        if row is None:
            self._session_key = None
            return None
        return SimpleNamespace(session_data=row[0])
