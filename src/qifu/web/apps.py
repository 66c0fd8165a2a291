from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "qifu.web"
    verbose_name = "工作台"
