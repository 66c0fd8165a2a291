"""The JSON API: one OpenAPI description (``/api/v1/openapi.json``, documentation at
``/api/v1/docs``, served from the package, never a CDN) for every JSON endpoint, each domain's
endpoints in a router of its own app:

- ``/api/v1/…``: the enterprise portal (a signed-in enterprise's session; ``portal.api``);
- ``/api/v1/labs/…``: shared labs' catalogue, slots, bookings and voucher (the same session; ``portal.labs_api``);
- ``/api/v1/experts/…``: the enterprise's technical needs (the same session; ``portal.experts_api``);
- ``/api/v1/projects…``: the owner firm's construction projects phase by phase (``portal.projects_api``);
- ``/api/v1/policies…``: the firm's policies, their payments and its answers to them (``portal.policies_api``);
- ``/api/assistant/ask``: the assistant, public, CSRF-protected like a form (``assistant.api``);
- ``/hooks/sms/inbound``: the SMS gateway's replies, with its bearer token (``reminders.api``).

Open311 GeoReport v2 is not here: it speaks form bodies and XML as that spec says.

Every operation may answer 422 with the fields that could not be read (Pydantic's validation,
and ``qifu.web.nul``'s refusal of NUL); the description says so for each of them.
"""

from __future__ import annotations

import json

from django.shortcuts import render
from ninja import NinjaAPI
from ninja.openapi.docs import Swagger

from qifu.assistant.api import router as assistant
from qifu.portal.api import router as portal
from qifu.portal.experts_api import router as experts
from qifu.portal.labs_api import router as labs
from qifu.portal.policies_api import router as policies
from qifu.portal.projects_api import router as projects
from qifu.reminders.api import router as sms_hooks

VALIDATION_ERRORS = {
    "title": "ValidationErrors",
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {"type": "array", "items": {
        "type": "object", "required": ["type", "loc", "msg"],
        "properties": {"type": {"type": "string"}, "msg": {"type": "string"},
                       "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                               "description": "body / query / form，再到字段"}},
    }}},
}


class API(NinjaAPI):
    def get_root_path(self, path_params) -> str:
        """Where the API is mounted: the site's root (each router carries its own prefix), behind
        a look-ahead in ``qifu.urls`` that ninja's reverse of its root pattern cannot satisfy."""
        return "/"

    def get_openapi_schema(self, **kwargs):
        schema = super().get_openapi_schema(**kwargs)
        schema.setdefault("components", {}).setdefault("schemas", {})["ValidationErrors"] = VALIDATION_ERRORS
        ref = {"$ref": "#/components/schemas/ValidationErrors"}
        for operations in schema["paths"].values():
            for op in operations.values():
                declared = op["responses"].get(422)  # ninja's keys are numbers
                if declared is None:
                    op["responses"][422] = {"description": "无法读取的值（按字段）",
                                              "content": {"application/json": {"schema": ref}}}
                else:  # its own 422 as well
                    content = declared["content"]["application/json"]
                    content["schema"] = {"oneOf": [content["schema"], ref]}
        return schema


class Docs(Swagger):
    """Swagger UI from the package's own files. Ninja renders them only when it is an installed
    app, else from a CDN, which a closed government network cannot reach; qifu does not install
    it as an app (``settings.NINJA_FOLDER``), so the page is rendered here."""

    def render_page(self, request, api, **kwargs):
        self.settings["url"] = self.get_openapi_url(api, kwargs)
        # as ninja's page: its "try it out" sends the CSRF token where an API-wide auth asks for it
        csrf = isinstance(api.auth, list | tuple) and any(getattr(a, "csrf", False) for a in api.auth)
        return render(request, self.template, {"swagger_settings": json.dumps(self.settings, indent=1), "api": api,
                                               "add_csrf": csrf})


api = API(
    title="企服 qifu API", version="1.0.0", urls_namespace="api",
    description="企业登录后查看年报问题、提交说明、年报自检；共享实验室、科创伙伴、分期验收、经营异常名录、惠企政策；年报助手；短信网关回执。金额单位：万元（实验室价格为元）。",
    openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs", docs=Docs(),
)
api.add_router("/api/v1/", portal)
api.add_router("/api/v1/labs/", labs)
api.add_router("/api/v1/experts/", experts)
api.add_router("/api/v1/projects", projects)
api.add_router("/api/v1/policies", policies)
api.add_router("/api/assistant/", assistant)
api.add_router("/hooks/sms/", sms_hooks)
