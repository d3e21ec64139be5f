from django.urls import path

from campaigns.views import api, dashboard, health, hooks, pages

urlpatterns = [
    path("c/<slug:slug>/", pages.campaign_page, name="campaign"),
    path("api/campaigns/<slug:slug>/progress.json", api.progress_json, name="progress-json"),
    path("hooks/<slug:provider>/", hooks.webhook, name="webhook"),
    path("healthz", health.healthz, name="healthz"),
    path("dashboard/", dashboard.dashboard_index, name="dashboard"),
    path("dashboard/<slug:slug>/", dashboard.dashboard_campaign, name="dashboard-campaign"),
    path("dashboard/<slug:slug>/live/", dashboard.dashboard_live, name="dashboard-live"),
    path("dashboard/<slug:slug>/events/", dashboard.dashboard_events, name="dashboard-events"),
]
