from django.apps import AppConfig


class ChecksConfig(AppConfig):
    name = "qifu.checks"
    verbose_name = "年报校验"
