from django.contrib import admin
from django.urls import include, path

from qifu.portal.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("portal/", include("qifu.portal.urls")),
    path("", include("qifu.reminders.urls")),
    path("", include("qifu.assistant.urls")),
    path("", include("qifu.web.urls")),
]
