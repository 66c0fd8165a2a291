from django.urls import path

from qifu.portal import experts, labs, land, policies, projects, requests, views

app_name = "portal"
urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login, name="login"),
    path("verify/", views.verify, name="verify"),
    path("logout/", views.logout, name="logout"),
    path("findings/<int:finding_id>/explain/", views.explain, name="explain"),
    path("selfcheck/", views.selfcheck, name="selfcheck"),
    path("requests/", requests.requests_page, name="requests"),
    path("requests/<str:number>/", requests.request_page, name="request"),
    path("requests/<str:number>/act/", requests.request_act, name="request-act"),
    path("land/", land.land_page, name="land"),
    path("land/<int:year>/", land.land_page, name="land-year"),
    path("land/<int:year>/act/", land.land_act, name="land-act"),
    path("projects/", projects.projects_page, name="projects"),
    path("projects/<str:code>/", projects.project_page, name="project"),
    path("projects/<str:code>/act/", projects.project_act, name="project-act"),
    path("experts/", experts.needs_page, name="experts"),
    path("experts/needs/", experts.need_submit, name="expert-need-submit"),
    path("experts/cooperations/<int:coop_id>/rate/", experts.rate, name="expert-coop-rate"),
    path("labs/", labs.labs_page, name="labs"),
    path("labs/instruments/<int:instrument_id>/", labs.instrument_page, name="lab-instrument"),
    path("labs/instruments/<int:instrument_id>/book/", labs.book, name="lab-book"),
    path("labs/bookings/<int:booking_id>/cancel/", labs.cancel, name="lab-cancel"),
    path("labs/bookings/<int:booking_id>/rate/", labs.rate, name="lab-rate"),
    path("labs/instruments/<int:instrument_id>/wait/", labs.wait, name="lab-wait"),
    path("labs/waiting/<int:waiting_id>/withdraw/", labs.withdraw, name="lab-withdraw"),
    path("labs/orders/", labs.order, name="lab-order"),
    path("labs/orders/<int:order_id>/withdraw/", labs.order_withdraw, name="lab-order-withdraw"),
    path("labs/orders/<int:order_id>/report/", labs.order_report, name="lab-order-report"),
    path("labs/verify/", labs.verify, name="lab-verify"),
    path("policies/", policies.policies_page, name="policies"),
    path("policies/<int:match_id>/", policies.policy_page, name="policy"),
    path("policies/<int:match_id>/act/", policies.policy_act, name="policy-act"),
]
