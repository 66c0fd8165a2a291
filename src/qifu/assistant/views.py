import json

from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_POST

from qifu import text
from qifu.assistant.actions import ask


@ensure_csrf_cookie
def chat(request):
    """The enterprise portal's chat panel (public: filers ask before they sign in)."""
    return render(request, "assistant/chat.html")


@require_POST
def api_ask(request):
    """POST {"question": "…"} -> {"answer", "score", "sources", "handoff", …}."""
    try:
        body = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return JsonResponse({"error": "请求体应为 JSON，例如 {\"question\": \"年报什么时候截止\"}"}, status=400)
    question = body.get("question") if isinstance(body, dict) else None
    if not isinstance(question, str) or not question.strip():
        return JsonResponse({"error": "请填写问题（question）"}, status=400)
    contact = str(body.get("contact", ""))[:100]
    if reason := text.problem(question + contact):
        return JsonResponse({"error": f"问题{reason}"}, status=400)
    answer, item = ask(question, channel="web", contact=contact)
    data = answer.as_json()
    data["handoff_id"] = item.id if item else None
    return JsonResponse(data, json_dumps_params={"ensure_ascii": False})
