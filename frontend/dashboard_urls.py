"""The admin dashboard's pages, mounted at /admin/dashboard/ (before the admin site's own
catch-all patterns)."""

from django.urls import path

from frontend import dashboard, dashboard_audits

urlpatterns = [
    path("", dashboard.dashboard_index, name="dashboard-index"),
    path("datasets/<int:dataset_id>/", dashboard.dataset_dashboard, name="dashboard-dataset"),
    path(
        "datasets/<int:dataset_id>/audits/",
        dashboard_audits.dataset_audits,
        name="dashboard-audits",
    ),
    path("audits/<int:audit_id>/", dashboard_audits.audit_report_page, name="dashboard-audit"),
]
