"""A NUL character in what a client sends is refused before any view runs.

PostgreSQL cannot store NUL in text, nor compare a column with a value that holds one: such a
value reaching a query was a 500 there (and a different answer on SQLite). Django's form fields
refuse it, but many views read ``request.POST`` themselves, and the JSON API's values are
parsed by Pydantic, which has no such rule. Nobody types a NUL; it comes from broken clients
and probes. So:

- in the path: 404, as for any path that names nothing;
- the JSON API (``/api/``, ``/hooks/``), in a query parameter, a form field or a JSON string at
  any depth: 422 naming the field, in the shape of the API's other validation errors;
- any other page, in a query parameter or a form field: 400 naming the field.

Open311 (``/open311/``) is left to its own guard, which answers in that standard's error format.
"""

from __future__ import annotations

import json

from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseNotFound, JsonResponse

from qifu import text

API = ("/api/", "/hooks/")
OWN_GUARD = ("/open311/",)
NUL = "\x00"
MESSAGE = "含有空字符（\\x00），无法保存"


def _in_json(value, loc: tuple) -> tuple | None:
    """Where in a parsed JSON value a string (or a key) holds NUL, else None."""
    if isinstance(value, str):
        return loc if NUL in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            if NUL in k:
                return (*loc, k.replace(NUL, ""))
            if (found := _in_json(v, (*loc, k))) is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if (found := _in_json(v, (*loc, i))) is not None:
                return found
    return None


def _invalid(loc: tuple) -> JsonResponse:
    field = ".".join(str(part) for part in loc[1:]) or loc[0]
    return JsonResponse({"detail": [{"type": "value_error", "loc": list(loc), "msg": f"{field} {MESSAGE}"}]},
                        status=422, json_dumps_params={"ensure_ascii": False})


def page_refusal(request) -> HttpResponse | None:
    if NUL in request.path:
        return HttpResponseNotFound("没有这个页面：路径中含有空字符（\\x00）", content_type="text/plain; charset=utf-8")
    if (found := text.nul_field(request)) is not None:
        return HttpResponseBadRequest(f"{found[1]} {MESSAGE}", content_type="text/plain; charset=utf-8")
    return None


def refusal(request) -> JsonResponse | None:
    """The JSON API's answer to a NUL, else None."""
    if NUL in request.path:
        return JsonResponse({"detail": "没有这个资源：路径中含有空字符（\\x00）"}, status=404,
                            json_dumps_params={"ensure_ascii": False})
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        # Read the body before the form scan below parses it: a multipart body parsed from the
        # stream can no longer be read whole, and the API's views read it whole, as JSON (no
        # endpoint takes files), so a form sent to one would be a 500 rather than its refusal.
        request.body  # noqa: B018
    if (found := text.nul_field(request)) is not None:
        return _invalid(found)
    if request.method in ("GET", "HEAD", "OPTIONS") or request.content_type in text.FORM_TYPES:
        return None
    if b"\\u0000" in request.body:  # JSON writes NUL only so; the body is parsed only then
        try:
            found = _in_json(json.loads(request.body), ("body",))
        except (ValueError, UnicodeDecodeError):
            return None  # not JSON: the view says so in its own words
        if found is not None:
            return _invalid(found)
    return None


class RefuseNul:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith(OWN_GUARD):
            answer = None
        elif path.startswith(API):
            answer = refusal(request)
        else:
            answer = page_refusal(request)
        return answer if answer is not None else self.get_response(request)
