"""The WSGI application, loaded whole before it answers: every view module, the rule catalogue
and the assistant's index (``qifu.web.server.preload``), so that no first request waits for an
import or a build, whichever server runs it. On SQLite, requests in one worker take turns
(``qifu.web.turns``; ``QIFU_TURN_WAIT_MS``)."""

import os

from django.core.wsgi import get_wsgi_application

from qifu import config
from qifu.web import turns

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qifu.settings")

application = turns.wrap(get_wsgi_application(), turns.wait_ms(config.get("QIFU_TURN_WAIT_MS"), config.database_url()))

from qifu.web.server import preload  # noqa: E402  (needs Django set up)

preload()
