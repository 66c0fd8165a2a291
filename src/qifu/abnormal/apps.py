from django.apps import AppConfig


class AbnormalConfig(AppConfig):
    name = "qifu.abnormal"
    verbose_name = "经营异常名录"
