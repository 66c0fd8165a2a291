from django.apps import AppConfig


class CorrectionsConfig(AppConfig):
    name = "qifu.corrections"
    verbose_name = "更正闭环"
