from django.apps import AppConfig


class ServiceRequestsConfig(AppConfig):
    name = "qifu.service_requests"
    verbose_name = "企业诉求"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from qifu.service_requests import settings
        from qifu.service_requests.models import CategorySetting, Department

        def forget(**kwargs):  # a department's contacts or a category's limits changed here (weak=False: a local function)
            settings.forget()

        for model in (CategorySetting, Department):
            post_save.connect(forget, sender=model, weak=False, dispatch_uid=f"forget-limits-{model.__name__}")
            post_delete.connect(forget, sender=model, weak=False, dispatch_uid=f"forget-limits-del-{model.__name__}")
