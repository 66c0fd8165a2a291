from django.apps import AppConfig


class InspectionsConfig(AppConfig):
    name = "qifu.inspections"
    verbose_name = "年报抽查"
