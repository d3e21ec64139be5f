import logging

from django.apps import AppConfig
from django.conf import settings
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger("campaigns")


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campagnes")

    def ready(self) -> None:
        if settings.SANDBOX_ENABLED and not settings.DEBUG:
            logger.warning(
                "!!! JAUGE_SANDBOX=true with DEBUG=false: the sandbox test checkout is %s. Anyone can add "
                "fake money to the totals; pages and banners say MODE TEST. Never on a real campaign. !!!",
                "offered" if "sandbox" in settings.PAYMENT_PROVIDERS else "switched on (not offered)",
            )
        # Registers the tasks in every process (web, shell, worker): services send them by name
        # through campaigns.queue, which looks them up in Celery's registry. Here, not at the top:
        # the tasks import the services and models, which need the app registry ready.
        from campaigns import tasks  # noqa: F401
