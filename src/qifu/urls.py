from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from qifu.api import api

# The JSON API first: under load most requests are its calls (a burst of bookings), and Django
# tries the patterns in order (the API's 19 after 75 others cost 60 µs a request). Behind one
# look-ahead, so that any other path costs one failed match, and so that ninja's empty root
# pattern cannot shadow the dashboard: every API path begins with api/ or hooks/, which nothing
# else uses.

urlpatterns = [
    re_path(r"^(?=api/|hooks/)", api.urls),
    path("admin/", admin.site.urls),
    # pages without the icon's link (the admin, the API's docs) make browsers ask here
    path("favicon.ico", RedirectView.as_view(url=static("qifu/favicon.svg"), permanent=True)),
    path("portal/", include("qifu.portal.urls")),
    path("", include("qifu.service_requests.urls")),
    path("", include("qifu.assistant.urls")),
    path("", include("qifu.web.urls")),
]

# SQLite's write lock not obtained in time (a bulk import holding it): 503 "try again", not 500
handler500 = "qifu.web.busy.server_error"
