from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "qifu.accounts"
    verbose_name = "工作人员与审计"
