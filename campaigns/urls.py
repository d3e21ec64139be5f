from django.urls import path

from campaigns.views import api, health, hooks, pages

urlpatterns = [
    path("c/<slug:slug>/", pages.campaign_page, name="campaign"),
    path("api/campaigns/<slug:slug>/progress.json", api.progress_json, name="progress-json"),
    path("hooks/<slug:provider>/", hooks.webhook, name="webhook"),
    path("healthz", health.healthz, name="healthz"),
]
