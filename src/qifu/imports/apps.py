from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "qifu.imports"
    verbose_name = "数据导入"
