from django.urls import path

from qifu.assistant import views

urlpatterns = [
    path("assistant/", views.chat, name="assistant"),
]
