from django.apps import AppConfig


class SourcesConfig(AppConfig):
    name = "qifu.sources"
    verbose_name = "税务与社保数据"
