from django.apps import AppConfig


class LabsConfig(AppConfig):
    name = "qifu.labs"
    verbose_name = "共享实验室"
