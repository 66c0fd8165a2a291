from django.urls import path

from qifu.assistant import views

urlpatterns = [
    path("assistant/", views.chat, name="assistant"),
    path("api/assistant/ask", views.api_ask, name="assistant-ask"),
]
