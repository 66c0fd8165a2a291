from django.urls import path

from qifu.reminders import views

urlpatterns = [
    path("hooks/sms/inbound", views.sms_inbound, name="sms-inbound"),
]
