from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campagnes"

    def ready(self) -> None:
        # Registers the tasks in every process (web, shell, worker): services send them by name
        # through campaigns.queue, which looks them up in Celery's registry. Here, not at the top:
        # the tasks import the services and models, which need the app registry ready.
        from campaigns import tasks  # noqa: F401
