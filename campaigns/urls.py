from django.urls import path

from campaigns.views import api, dashboard, donate, embed, health, hooks, metrics, pages, pledges, tax_receipts

urlpatterns = [
    path("c/<slug:slug>/", pages.campaign_page, name="campaign"),
    path("c/<slug:slug>/donate/", donate.donate, name="donate"),
    path("c/<slug:slug>/checkout/<str:reference>/", donate.sandbox_checkout, name="sandbox-checkout"),
    path("c/<slug:slug>/merci/<str:reference>/", donate.thanks, name="donate-thanks"),
    path("c/<slug:slug>/merci/<str:reference>/statut/", donate.thanks_status, name="donate-thanks-status"),
    path("c/<slug:slug>/promesse/<str:token>/", pledges.pledge_confirm, name="pledge-confirm"),
    path("recu-fiscal/<str:token>/", tax_receipts.tax_receipt_download, name="tax-receipt"),
    path("embed/<slug:slug>/", embed.banner, name="embed-banner"),
    path("embed/<slug:slug>/frame/", embed.frame, name="embed-frame"),
    path("embed/<slug:slug>.js", embed.loader, name="embed-loader"),
    path("embed/<slug:slug>.svg", embed.svg, name="embed-svg"),
    path("api/campaigns/<slug:slug>/progress.json", api.progress_json, name="progress-json"),
    path("hooks/<slug:provider>/", hooks.webhook, name="webhook"),
    path("healthz", health.healthz, name="healthz"),
    path("healthz/live", health.live, name="healthz-live"),
    path("healthz/ready", health.ready, name="healthz-ready"),
    path("metrics", metrics.metrics, name="metrics"),
    path("dashboard/", dashboard.dashboard_index, name="dashboard"),
    path("dashboard/<slug:slug>/", dashboard.dashboard_campaign, name="dashboard-campaign"),
    path("dashboard/<slug:slug>/live/", dashboard.dashboard_live, name="dashboard-live"),
    path("dashboard/<slug:slug>/events/", dashboard.dashboard_events, name="dashboard-events"),
]
