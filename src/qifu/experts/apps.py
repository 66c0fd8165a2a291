from django.apps import AppConfig


class ExpertsConfig(AppConfig):
    name = "qifu.experts"
    verbose_name = "科创伙伴"
