"""Open311 GeoReport v2 under ``/open311/v2/`` (contract v1.1 §4; domain/enterprise-services.md
§A), so that existing clients and devices work unchanged:

- JSON or XML by the path's extension; lists and a single request are JSON arrays; XML roots
  ``services/service``, ``service_definition``, ``service_requests/request``, ``errors/error``,
  with the UTF-8 declaration and no namespace.
- ``POST requests`` needs an ``api_key`` (query string or form body; 403 otherwise) and one
  location: ``lat`` + ``long``, ``address_string``, or ``attribute[uscc]`` of a registered
  entity. It answers ``[{"service_request_id": …, "service_notice": …}]``.
- GET needs no key (the spec's rule). What it shows is masked like every list: no phone number
  or email from a description, the township for an address.
- An empty ``jurisdiction_id`` is no jurisdiction; another county's is 404. The ``open311``
  1.1 client's ``service/<code>`` (singular) is answered too.
- Errors as the spec says: 400 with an errors body, 403 for a bad key, 404 for an unknown
  service or request.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from xml.etree import ElementTree as ET

from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from qifu import config
from qifu import text as text_rules
from qifu.accounts import masking
from qifu.engine import uscc as uscc_mod
from qifu.engine.requests.categories import BY_CODE, CATEGORIES
from qifu.engine.requests.workflow import LABELS, State, is_open
from qifu.registry.models import Entity
from qifu.service_requests import actions, apikeys, settings
from qifu.service_requests.models import Channel, ServiceRequest

SPEC = "http://wiki.open311.org/GeoReport_v2"
MAX_SPAN = dt.timedelta(days=90)
MAX_REQUESTS = 1000
POSTS_PER_KEY_HOUR = 600
ATTRIBUTE = re.compile(r"^attribute\[([A-Za-z0-9_]+)\](\[\])?$")


def jurisdiction() -> str:
    return config.get("QIFU_OPEN311_JURISDICTION", "cixi.gov.cn") or "cixi.gov.cn"


class Problem(Exception):
    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status, self.description = status, description


SINGULAR = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute", "values": "value"}


def _element(parent: ET.Element, key: str, value) -> None:
    el = ET.SubElement(parent, key)
    if isinstance(value, list):
        for v in value:
            _element(el, SINGULAR.get(key, key), v)
    elif isinstance(value, dict):
        for k, v in value.items():
            _element(el, k, v)
    elif value is not None:
        el.text = ("true" if value else "false") if isinstance(value, bool) else str(value)


def _xml(root: str, item: str | None, data: list[dict] | dict) -> bytes:
    """The spec's XML: no namespace, UTF-8 declared; a list's items under ``item``."""
    top = ET.Element(root)
    for row in (data if item is not None else [data]):
        parent = ET.SubElement(top, item) if item is not None else top
        for k, v in row.items():
            _element(parent, k, v)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(top, encoding="utf-8")


def _respond(fmt: str, data, root: str, item: str | None, status: int = 200) -> HttpResponse:
    if fmt == "xml":
        return HttpResponse(_xml(root, item, data), status=status, content_type="text/xml; charset=utf-8")
    body = json.dumps(data, ensure_ascii=False)
    return HttpResponse(body.encode(), status=status, content_type="application/json; charset=utf-8")


def errors(fmt: str, status: int, description: str) -> HttpResponse:
    """The standard's error body ([{"code", "description"}]) in ``fmt`` (json or xml)."""
    return _respond(fmt, [{"code": status, "description": description}], "errors", "error", status)


def _guard(view):
    """Format from the extension; Problem → the spec's error body; the jurisdiction checked."""

    def wrapper(request, fmt: str, *args, **kwargs):
        if fmt not in ("json", "xml"):
            return errors("json", 404, f"格式应为 json 或 xml，而不是 {fmt}")
        given = (request.GET.get("jurisdiction_id") or request.POST.get("jurisdiction_id") or "").strip()
        if given and given != jurisdiction():
            return errors(fmt, 404, f"本接口不服务 jurisdiction_id={given[:60]}（本接口为 {jurisdiction()}）")
        # a NUL byte is in no code, id or text (and PostgreSQL refuses it in a query)
        if any("\x00" in str(v) for v in (*args, *kwargs.values())):
            return errors(fmt, 404, "没有这个资源：路径中含有空字符（\\x00）")
        if (found := text_rules.nul_field(request)) is not None:
            return errors(fmt, 400, f"参数 {found[1][:40]} 含有空字符（\\x00）")
        try:
            return view(request, fmt, *args, **kwargs)
        except Problem as p:
            return errors(fmt, p.status, p.description)

    wrapper.__name__ = view.__name__
    return wrapper


CST = dt.timezone(dt.timedelta(hours=8))  # China has no daylight saving: a fixed offset is exact


def _iso(t: dt.datetime | None) -> str | None:
    return t.astimezone(CST).isoformat(timespec="seconds") if t else None


@require_http_methods(["GET"])
def openapi(request):
    """This interface described in OpenAPI 3 (its JSON forms), for partners and fuzzers."""
    from importlib import resources

    import yaml

    spec = yaml.safe_load(resources.files("qifu.service_requests").joinpath("open311-openapi.yaml").read_text("utf-8"))
    return HttpResponse(json.dumps(spec, ensure_ascii=False).encode(), content_type="application/json; charset=utf-8")


@require_http_methods(["GET"])
@_guard
def discovery(request, fmt: str):
    base = request.build_absolute_uri("/open311/v2/")
    data = {
        "changeset": "2026-11-30T00:00:00+08:00",
        "contact": "企业服务中心（企服平台）",
        "key_service": "向企业服务中心申请，由工作人员用 qifu apikey 签发",
        "endpoints": [{"specification": SPEC, "url": base, "changeset": "2026-11-30T00:00:00+08:00",
                       "type": "production", "formats": ["text/xml", "application/json"]}],
    }
    return _respond(fmt, data, "discovery", None)


def _service(code: str) -> dict:
    c = BY_CODE[code]
    return {"service_code": c.code, "service_name": c.name, "description": f"{c.name}：由{settings.limits()[code].department}承办",
            "metadata": True, "type": "realtime", "keywords": ",".join(c.keywords), "group": "企业诉求"}


@require_http_methods(["GET"])
@_guard
def services(request, fmt: str):
    return _respond(fmt, [_service(c.code) for c in CATEGORIES], "services", "service")


@require_http_methods(["GET"])
@_guard
def service_definition(request, fmt: str, code: str):
    if code not in BY_CODE:
        raise Problem(404, f"没有这个服务：{code[:40]}")
    data = {"service_code": code, "attributes": [{
        "variable": True, "code": "uscc", "datatype": "string", "required": False, "order": 1,
        "datatype_description": "18位统一社会信用代码（GB 32100）", "description": "统一社会信用代码"}]}
    return _respond(fmt, data, "service_definition", None)


PUBLIC_COLUMNS = ("number", "status", "category", "department__name", "text", "answer", "submitted_at", "updated_at",
                  "answer_due", "town__name", "lat", "long")


def _public_rows(qs) -> list[dict]:
    """Requests as Open311 shows them to anyone: masked text, the township for an address
    (read as plain values: a thousand model instances cost more than the query)."""
    notices = {c.code: _notice(c.code) for c in CATEGORIES}
    out = []
    for (number, status, category, department, text, answer, submitted, updated, due, town, lat, long) in \
            qs.values_list(*PUBLIC_COLUMNS):
        state = State(status)
        closed = not is_open(state)
        out.append({
            "service_request_id": number, "status": "closed" if closed else "open",
            "status_notes": LABELS[state] + (f"：{masking.text(answer)[:500]}" if answer and closed else ""),
            "service_name": BY_CODE[category].name if category in BY_CODE else category, "service_code": category,
            "description": masking.text(text), "agency_responsible": department,
            "service_notice": notices.get(category, ""), "requested_datetime": _iso(submitted),
            "updated_datetime": _iso(updated), "expected_datetime": _iso(due), "address": town,
            "address_id": None, "zipcode": None, "lat": lat, "long": long, "media_url": None,
        })
    return out


def _notice(category: str) -> str:
    lim = settings.limits().get(category)
    if not lim:
        return ""
    return f"{lim.department}在 {lim.sign_days:g} 个工作日内签收，{lim.answer_days:g} 个工作日内答复（企业补充材料期间暂停计时）"


def _date(value: str, name: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Problem(400, f"{name} 应为带时区的 ISO 8601 时间，如 2026-01-01T00:00:00+08:00") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@csrf_exempt  # devices and partners authenticate with api_key, not a browser session
@require_http_methods(["GET", "POST"])
@_guard
def requests_(request, fmt: str):
    if request.method == "POST":
        return _post(request, fmt)
    q = request.GET
    qs = ServiceRequest.objects.all()
    if ids := _list(q.get("service_request_id", "")):
        qs = qs.filter(number__in=ids[:MAX_REQUESTS])
    else:
        if codes := _list(q.get("service_code", "")):
            unknown = [c for c in codes if c not in BY_CODE]
            if unknown:
                raise Problem(404, f"没有这个服务：{unknown[0][:40]}")
            qs = qs.filter(category__in=codes)
        end = _date(q["end_date"], "end_date") if q.get("end_date") else timezone.now()
        start = _date(q["start_date"], "start_date") if q.get("start_date") else end - MAX_SPAN
        if end < start:
            raise Problem(400, "end_date 早于 start_date")
        if end - start > MAX_SPAN:
            raise Problem(400, "start_date 与 end_date 相隔不能超过 90 天")
        qs = qs.filter(submitted_at__gte=start, submitted_at__lte=end)
        statuses = set(_list(q.get("status", "")))
        if statuses - {"open", "closed"}:
            raise Problem(400, "status 只能是 open、closed 或二者（逗号分隔）")
        if statuses == {"open"}:
            qs = qs.exclude(status=State.CLOSED)
        elif statuses == {"closed"}:
            qs = qs.filter(status=State.CLOSED)
    page_size = _int(q.get("page_size"), MAX_REQUESTS, "page_size", 1, MAX_REQUESTS)
    page = _int(q.get("page"), 1, "page", 1, 10**6)
    rows = _public_rows(qs.order_by("-submitted_at", "-id")[(page - 1) * page_size: page * page_size])
    return _respond(fmt, rows, "service_requests", "request")


def _int(value: str | None, default: int, name: str, lo: int, hi: int) -> int:
    if value in (None, ""):
        return default
    if not value.isdigit() or not lo <= int(value) <= hi:
        raise Problem(400, f"{name} 应为 {lo} 到 {hi} 之间的整数")
    return int(value)


@require_http_methods(["GET"])
@_guard
def one_request(request, fmt: str, number: str):
    rows = _public_rows(ServiceRequest.objects.filter(number=number))
    if not rows:
        raise Problem(404, f"没有这个诉求：{number[:40]}")
    return _respond(fmt, rows, "service_requests", "request")


@require_http_methods(["GET"])
@_guard
def token(request, fmt: str, token: str):
    raise Problem(404, "本接口即时返回诉求编号，没有需要查询的令牌")


def _attributes(post) -> dict[str, str]:
    out = {}
    for key, values in post.lists():
        if m := ATTRIBUTE.match(key):
            out[m.group(1)] = values[-1] if not m.group(2) else ",".join(values)
    return out


def _post(request, fmt: str):
    key = apikeys.check(request.GET.get("api_key") or request.POST.get("api_key"))
    if key is None:
        raise Problem(403, "api_key 缺失或无效")
    p = request.POST
    code = (p.get("service_code") or "").strip()
    if not code:
        raise Problem(400, "缺少 service_code")
    if code not in BY_CODE:
        raise Problem(404, f"没有这个服务：{code[:40]}")
    description = p.get("description") or ""
    if len(description) > actions.MAX_TEXT:
        raise Problem(400, f"description 最多 {actions.MAX_TEXT} 字，现有 {len(description)} 字")
    attrs = _attributes(p)
    entity = None
    if raw := attrs.get("uscc", "").strip():
        code18 = uscc_mod.normalise(raw)
        if why := uscc_mod.problem(code18):
            raise Problem(400, f"attribute[uscc] 有误：{why}")
        entity = Entity.objects.filter(uscc=code18).first()
        if entity is None:
            raise Problem(400, f"attribute[uscc] {code18} 不是本辖区登记的主体")
    lat, long = (p.get("lat") or "").strip(), (p.get("long") or "").strip()
    address = (p.get("address_string") or "").strip()
    if bool(lat) != bool(long):
        raise Problem(400, "lat 与 long 要同时提供")
    position = None
    if lat:
        try:
            position = (float(lat), float(long))
        except ValueError:
            raise Problem(400, "lat、long 应为数字（WGS84）") from None
        if not (-90 <= position[0] <= 90 and -180 <= position[1] <= 180):
            raise Problem(400, "lat、long 超出范围（WGS84）")
    if position is None and not address and entity is None:
        raise Problem(400, "需要一个位置：lat 和 long、address_string，或已登记主体的 attribute[uscc]")
    name = " ".join(x for x in (p.get("last_name", ""), p.get("first_name", "")) if x).strip()
    try:
        req = actions.do_submit_request(
            text=description, channel=Channel.OPEN311, actor=actions.Actor(f"接口：{key.name}"), entity=entity,
            category=code, contact_name=name, contact_phone=(p.get("phone") or "").strip(),
            contact_email=(p.get("email") or "").strip(), address=address or (entity.address or "" if entity else ""),
            lat=position[0] if position else None, long=position[1] if position else None, api_key=key,
            rate_limit=(f"open311-key:{key.pk}", POSTS_PER_KEY_HOUR, 3600),
        )
    except actions.RateLimited as e:
        raise Problem(429, str(e)) from None
    except actions.RequestError as e:
        raise Problem(400, str(e)) from None
    return _respond(fmt, [{"service_request_id": req.number, "service_notice": _notice(req.category), "account_id": None}],
                    "service_requests", "request")
