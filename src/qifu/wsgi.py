"""The WSGI application, loaded whole before it answers: every view module, the rule catalogue
and the assistant's index (``qifu.web.server.preload``), so that no first request waits for an
import or a build, whichever server runs it."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qifu.settings")
application = get_wsgi_application()

from qifu.web.server import preload  # noqa: E402  (needs Django set up)

preload()
