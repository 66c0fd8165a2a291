from django.contrib import admin
from django.urls import include, path

from qifu.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("portal/", include("qifu.portal.urls")),
    path("", include("qifu.service_requests.urls")),
    path("", include("qifu.assistant.urls")),
    path("", include("qifu.web.urls")),
    path("", api.urls),  # last: its empty root must not shadow the dashboard
]
