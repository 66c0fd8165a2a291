"""Inbound messages from the SMS gateway: replies of 退订 (T, TD) opt the number out."""

from __future__ import annotations

import hmac
import json
import re

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from qifu import config
from qifu.reminders.models import OptOut

OPT_OUT = re.compile(r"^\s*(退订|T|TD|N|取消)\s*$", re.IGNORECASE)


@csrf_exempt  # machine to machine: authenticated by the gateway's bearer token, not a browser session
@require_POST
def sms_inbound(request):
    """POST {"mobile": "139…", "content": "T"} with ``Authorization: Bearer QIFU_SMS_GATEWAY_TOKEN``."""
    token = config.get("QIFU_SMS_GATEWAY_TOKEN")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not token or not hmac.compare_digest(given, token):
        return JsonResponse({"error": "unauthorized"}, status=401)
    try:
        body = json.loads(request.body or b"{}")
        mobile, content = str(body["mobile"]).strip(), str(body.get("content", ""))
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "请求体应为 JSON：{\"mobile\": \"…\", \"content\": \"…\"}"}, status=400)
    if not re.fullmatch(r"\+?[0-9-]{5,20}", mobile):
        return JsonResponse({"error": f"号码格式不对：{mobile}"}, status=400)
    opted = bool(OPT_OUT.match(content))
    if opted:
        OptOut.objects.get_or_create(recipient=mobile.removeprefix("+86"))
    return JsonResponse({"opted_out": opted})
