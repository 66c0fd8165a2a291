from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "qifu.policies"
    verbose_name = "惠企政策直达"
