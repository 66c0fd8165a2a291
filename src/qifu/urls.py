from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("qifu.assistant.urls")),
    path("", include("qifu.web.urls")),
]
