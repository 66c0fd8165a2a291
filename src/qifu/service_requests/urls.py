from django.urls import re_path

from qifu.service_requests import open311

FMT = r"(?P<fmt>[a-z]+)"
urlpatterns = [
    re_path(r"^open311/v2/openapi\.json$", open311.openapi, name="open311-openapi"),
    re_path(rf"^open311/v2/discovery\.{FMT}$", open311.discovery, name="open311-discovery"),
    re_path(rf"^open311/v2/services\.{FMT}$", open311.services, name="open311-services"),
    re_path(rf"^open311/v2/services?/(?P<code>[^/.]+)\.{FMT}$", open311.service_definition, name="open311-service"),
    re_path(rf"^open311/v2/requests\.{FMT}$", open311.requests_, name="open311-requests"),
    re_path(rf"^open311/v2/requests/(?P<number>[^/]+)\.{FMT}$", open311.one_request, name="open311-request"),
    re_path(rf"^open311/v2/tokens/(?P<token>[^/]+)\.{FMT}$", open311.token, name="open311-token"),
]
