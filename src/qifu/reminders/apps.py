from django.apps import AppConfig


class RemindersConfig(AppConfig):
    name = "qifu.reminders"
    verbose_name = "提醒"
