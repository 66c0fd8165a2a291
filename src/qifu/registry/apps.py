from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "qifu.registry"
    verbose_name = "市场主体登记"
