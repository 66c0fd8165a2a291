"""The assistant's JSON endpoint (``qifu.api``): public, because filers ask before they sign
in; protected against cross-site posts like a form (Django's CSRF check), and limited per
client address so that nobody fills the hand-off queue."""

from __future__ import annotations

from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError
from ninja.utils import check_csrf

from qifu import text
from qifu.accounts import ratelimits
from qifu.accounts.clients import client_ip
from qifu.assistant.actions import ask as ask_action

router = Router(tags=["年报助手"])
PER_HOUR = 120


class AskIn(Schema):
    question: str = Field(min_length=1, max_length=500, description="问题，如“年报什么时候截止”")
    contact: str = Field("", max_length=100, description="转人工时留下的联系方式（可不填）")


class Source(Schema):
    id: str
    title: str


class AskOut(Schema):
    answer: str
    score: float
    sources: list[Source]
    handoff: bool = Field(description="交给工作人员答复时为 true")
    entry_id: str | None = None
    handoff_id: int | None = None


class AskError(Schema):
    detail: str


def same_site(request) -> bool:
    """No sign-in, but Django's CSRF check, before the body is read: a post from another site's
    page is refused like a form's."""
    if check_csrf(request) is not None:
        raise HttpError(403, "页面已过期，请刷新后再问")
    return True


@router.post("/ask", auth=same_site, response={200: AskOut, 400: AskError, 403: AskError, 429: AskError},
             summary="向年报助手提问（无需登录）")
def ask(request, body: AskIn):
    if reason := text.problem(body.question + body.contact):
        return Status(400, {"detail": f"问题{reason}"})
    if not body.question.strip():
        return Status(400, {"detail": "请填写问题（question）"})
    ip = client_ip(request)
    if ip and not ratelimits.take(f"assistant-ip:{ip}", PER_HOUR, 3600):
        return Status(429, {"detail": "提问过于频繁，请稍后再试"})
    answer, item = ask_action(body.question, channel="web", contact=body.contact)
    data = answer.as_json()
    data["handoff_id"] = item.id if item else None
    return data
