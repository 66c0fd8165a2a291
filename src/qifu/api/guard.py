"""A NUL character in what a client of the JSON API sends is refused before any view runs.

PostgreSQL cannot store NUL in text, nor compare a column with a value that holds one: such a
value reaching a query was a 500 there (and a different answer on SQLite). The portal's forms
are covered by Django's own validator and Open311 by its guard; the JSON API's values are
parsed by Pydantic, which has no such rule. So, for paths under ``/api/`` and ``/hooks/``:

- in the path: 404, as for any path that names nothing;
- in a query parameter, a form field or a JSON string (at any depth): 422 naming the field, in
  the shape of the API's other validation errors.
"""

from __future__ import annotations

import json

from django.http import JsonResponse

PREFIXES = ("/api/", "/hooks/")
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


def refusal(request) -> JsonResponse | None:
    if NUL in request.path:
        return JsonResponse({"detail": "没有这个资源：路径中含有空字符（\\x00）"}, status=404,
                            json_dumps_params={"ensure_ascii": False})
    for name, values in request.GET.lists():
        if NUL in name or any(NUL in v for v in values):
            return _invalid(("query", name.replace(NUL, "")))
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    kind = request.content_type or ""
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for name, values in request.POST.lists():
            if NUL in name or any(NUL in v for v in values):
                return _invalid(("form", name.replace(NUL, "")))
    elif b"\\u0000" in request.body:  # JSON writes NUL only so; the body is parsed only then
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
        if request.path_info.startswith(PREFIXES) and (answer := refusal(request)) is not None:
            return answer
        return self.get_response(request)
