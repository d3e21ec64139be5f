"""Settings for tests/test_logging.py: Jauge's own, plus one URL whose view raises (tests/error_urls.py).

Used as DJANGO_SETTINGS_MODULE of a real server subprocess; never loaded by the suite itself.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "tests.error_urls"
