from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campagnes"

    def ready(self) -> None:
        # Registers the tasks in every process (web, shell, worker): services send them by name
        # through campaigns.queue, which looks them up in Celery's registry.
        from campaigns import tasks  # noqa: F401
