from django.apps import AppConfig


class ChecksConfig(AppConfig):
    name = "qifu.checks"
    verbose_name = "年报校验"

    def ready(self) -> None:
        from qifu import config
        from qifu.engine.rules import kept

        # expressions of the rule language outside the catalogue (policies, land evaluation)
        # kept beside the catalogue's batch plans, for the next process
        kept.keep_in(config.cache_dir())
