import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from config.hotpath import HotPathDispatcher, HotPathHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
full = get_wsgi_application()  # sets Django up first: the hot-path handler reads the settings
application = HotPathDispatcher(full=full, lean=HotPathHandler(), memo_seconds=settings.PROGRESS_LOCAL_SECONDS)
