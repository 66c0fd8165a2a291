"""Inbound messages from the SMS gateway (``qifu.api``): replies of 退订 (T, TD) opt the
number out. Machine to machine: the gateway's bearer token (``QIFU_SMS_GATEWAY_TOKEN``), no
browser session."""

from __future__ import annotations

import hmac
import re

from ninja import Field, Router, Schema, Status
from ninja.security import HttpBearer

from qifu import config
from qifu.reminders.models import OptOut

OPT_OUT = re.compile(r"^\s*(退订|T|TD|N|取消)\s*$", re.IGNORECASE)


class GatewayToken(HttpBearer):
    def authenticate(self, request, token):
        expected = config.get("QIFU_SMS_GATEWAY_TOKEN")
        return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


router = Router(auth=GatewayToken(), tags=["短信网关"])


class Inbound(Schema):
    mobile: str = Field(max_length=30, description="回复短信的号码")
    content: str = Field("", max_length=500, description="回复内容；退订、T、TD、N、取消为退订")


class Outcome(Schema):
    opted_out: bool


class HookError(Schema):
    detail: str


class Unauthorized(Schema):
    detail: str


@router.post("/inbound", response={200: Outcome, 400: HookError, 401: Unauthorized}, summary="短信回复（退订）")
def inbound(request, body: Inbound):
    mobile = body.mobile.strip()
    if not re.fullmatch(r"\+?[0-9-]{5,20}", mobile):
        return Status(400, {"detail": f"号码格式不对：{mobile[:30]}"})
    opted = bool(OPT_OUT.match(body.content))
    if opted:
        OptOut.objects.get_or_create(recipient=mobile.removeprefix("+86"))
    return {"opted_out": opted}
