"""Routing on the county's data: the engine's model (``engine.requests.routing``) learnt from
the shipped seed and every request whose category a person chose or confirmed, kept under
``$QIFU_DATA_DIR/models`` and relearnt when that history changes (``refresh_model``, run after
an import); staff overrides first. `qifu route "…" --json` and the intake forms use ``route``."""

from __future__ import annotations

import threading
import time

from qifu import config
from qifu.engine.requests import routing as engine
from qifu.service_requests import settings
from qifu.service_requests.models import RoutingOverride, ServiceRequest

_lock = threading.Lock()
_model: tuple[str, object] | None = None


# The most recent confirmed requests the model learns from: enough for every category's
# phrasings (accuracy levels off after a few thousand), without learning for minutes.
MAX_HISTORY = 30_000


def _examples() -> list[tuple[str, str]]:
    confirmed = (ServiceRequest.objects.filter(category_confirmed=True).exclude(category="")
                 .order_by("-id").values_list("text", "category")[:MAX_HISTORY])
    return engine.seed() + list(confirmed)[::-1]


def _key() -> str:
    from django.db.models import Count, Max

    stats = ServiceRequest.objects.filter(category_confirmed=True).aggregate(n=Count("id"), last=Max("updated_at"))
    return f"{engine.VERSION}:{stats['n']}:{stats['last']}"


_checked: tuple[float, str] | None = None
RECHECK = 60.0  # seconds a process trusts its model before counting the confirmed history again


def model():
    """The current model; learnt again when confirmed categories changed since (looked at most
    once a minute per process: counting the history on every request would cost more than
    routing it)."""
    global _model, _checked
    now = time.monotonic()
    if _model and _checked and _checked[0] > now and _checked[1] == _model[0]:
        return _model[1]
    key = _key()
    _checked = (now + RECHECK, key)
    if _model and _model[0] == key:
        return _model[1]
    with _lock:
        if not (_model and _model[0] == key):
            _model = (key, engine.load_or_train(_examples(), config.data_dir() / "models"))
    return _model[1]


def refresh_model() -> None:
    global _checked
    _checked = None
    model()


def router() -> engine.Router:
    overrides = list(RoutingOverride.objects.values_list("phrase", "category"))
    return engine.Router(model(), overrides)


def route(text: str) -> dict:
    """{category, category_name, department, score, override} for a request's text."""
    r = router().route(text)
    return r.as_json(settings.limits()[r.category].department)
