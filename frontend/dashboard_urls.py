"""The admin dashboard's pages, mounted at /admin/dashboard/ (before the admin site's own
catch-all patterns)."""

from django.urls import path

from frontend import dashboard

urlpatterns = [
    path("", dashboard.dashboard_index, name="dashboard-index"),
    path("datasets/<int:dataset_id>/", dashboard.dataset_dashboard, name="dashboard-dataset"),
]
