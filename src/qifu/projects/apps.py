from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "qifu.projects"
    verbose_name = "分期验收"
