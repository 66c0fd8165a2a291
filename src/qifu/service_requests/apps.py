from django.apps import AppConfig


class ServiceRequestsConfig(AppConfig):
    name = "qifu.service_requests"
    verbose_name = "企业诉求"
