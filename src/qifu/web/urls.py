from django.contrib.auth import views as auth_views
from django.urls import path

from qifu.web import land, requests, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="web/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", views.password_change, name="password-change"),
    path("entities/", views.entities, name="entities"),
    path("entities/export.xlsx", views.entities_export, name="entities-export"),
    path("entities/<str:uscc>/", views.entity, name="entity"),
    path("entities/<str:uscc>/notes/", views.add_note, name="entity-note"),
    path("tasks/", views.tasks, name="tasks"),
    path("tasks/<int:task_id>/close/", views.close_task, name="task-close"),
    path("corrections/", views.corrections_page, name="corrections"),
    path("corrections/notify/", views.notify, name="corrections-notify"),
    path("corrections/explanations/<int:explanation_id>/review/", views.review, name="explanation-review"),
    path("requests/", requests.queue, name="requests"),
    path("requests/export.xlsx", requests.export, name="requests-export"),
    path("requests/new/", requests.intake, name="request-new"),
    path("requests/measures/", requests.measures, name="request-measures"),
    path("requests/routing/", requests.routing, name="request-routing"),
    path("requests/<str:number>/", requests.detail, name="request-detail"),
    path("requests/<str:number>/move/", requests.move, name="request-move"),
    path("requests/<str:number>/teach/", requests.teach, name="request-teach"),
    path("requests/<str:number>/files/<int:file_id>/", requests.attachment, name="request-file"),
    path("land/", land.overview, name="land"),
    path("land/remediation/", land.remediation, name="land-remediation"),
    path("land/remediation/<int:case_id>/", land.case, name="land-case"),
    path("land/<int:year>/", land.overview, name="land-year"),
    path("land/<int:year>/act/", land.act, name="land-act"),
    path("land/<int:year>/results/", land.results, name="land-results"),
    path("land/<int:year>/lists.xlsx", land.lists, name="land-lists"),
    path("land/<int:year>/prices.xlsx", land.prices, name="land-prices"),
    path("land/<int:year>/<str:uscc>/", land.firm, name="land-firm"),
    path("healthz", views.healthz, name="healthz"),
]
