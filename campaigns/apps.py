import logging

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger("campaigns")


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campagnes")

    def ready(self) -> None:
        from django.conf import settings

        if settings.SANDBOX_ENABLED and not settings.DEBUG:
            logger.warning(
                "!!! JAUGE_SANDBOX=true with DEBUG=false: the sandbox test checkout is %s. Anyone can add "
                "fake money to the totals; pages and banners say MODE TEST. Never on a real campaign. !!!",
                "offered" if "sandbox" in settings.PAYMENT_PROVIDERS else "switched on (not offered)",
            )
