from django.apps import AppConfig


class LandConfig(AppConfig):
    name = "qifu.land"
    verbose_name = "亩均效益评价"
