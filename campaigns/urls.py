from django.urls import path

from campaigns.views import api, dashboard, donate, embed, health, hooks, mes_dons, metrics, pages, pledges

urlpatterns = [
    path("c/<slug:slug>/", pages.campaign_page, name="campaign"),
    path("c/<slug:slug>/donate/", donate.donate, name="donate"),
    path("c/<slug:slug>/checkout/<str:reference>/", donate.sandbox_checkout, name="sandbox-checkout"),
    path("c/<slug:slug>/merci/<str:reference>/", donate.thanks, name="donate-thanks"),
    path("c/<slug:slug>/merci/<str:reference>/statut/", donate.thanks_status, name="donate-thanks-status"),
    path("c/<slug:slug>/promesse/<str:token>/", pledges.pledge_confirm, name="pledge-confirm"),
    path("mes-dons/", mes_dons.mes_dons_request, name="mes-dons-request"),
    path("mes-dons/<str:token>/", mes_dons.mes_dons_page, name="mes-dons"),
    path("mes-dons/<str:token>/mensuel/<int:pk>/", mes_dons.mes_dons_monthly, name="mes-dons-monthly"),
    path("mes-dons/<str:token>/mensuel/<int:pk>/carte/", mes_dons.mes_dons_card, name="mes-dons-card"),
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
