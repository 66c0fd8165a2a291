"""The JSON API: one OpenAPI description (``/api/v1/openapi.json``, documentation at
``/api/v1/docs``, served from the package, never a CDN) for every JSON endpoint, each domain's
endpoints in a router of its own app:

- ``/api/v1/…``: the enterprise portal (a signed-in enterprise's session; ``portal.api``);
- ``/api/v1/labs/…``: shared labs' catalogue, slots, bookings and voucher (the same session; ``portal.labs_api``);
- ``/api/v1/experts/…``: the enterprise's technical needs (the same session; ``portal.experts_api``);
- ``/api/v1/projects…``: the owner firm's construction projects phase by phase (``portal.projects_api``);
- ``/api/assistant/ask``: the assistant, public, CSRF-protected like a form (``assistant.api``);
- ``/hooks/sms/inbound``: the SMS gateway's replies, with its bearer token (``reminders.api``).

Open311 GeoReport v2 is not here: it speaks form bodies and XML as that spec says.
"""

from __future__ import annotations

from ninja import NinjaAPI

from qifu.assistant.api import router as assistant
from qifu.portal.api import router as portal
from qifu.portal.experts_api import router as experts
from qifu.portal.labs_api import router as labs
from qifu.portal.projects_api import router as projects
from qifu.reminders.api import router as sms_hooks

api = NinjaAPI(
    title="企服 qifu API", version="1.0.0", urls_namespace="api",
    description="企业登录后查看年报问题、提交说明、年报自检；年报助手；短信网关回执。金额单位：万元。",
    openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs",
)
api.add_router("/api/v1/", portal)
api.add_router("/api/v1/labs/", labs)
api.add_router("/api/v1/experts/", experts)
api.add_router("/api/v1/projects", projects)
api.add_router("/api/assistant/", assistant)
api.add_router("/hooks/sms/", sms_hooks)
