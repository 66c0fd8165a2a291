from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "qifu.assistant"
    verbose_name = "年报助手"
