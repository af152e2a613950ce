"""The annotator's pages, at the site root (after the API and admin prefixes)."""

from django.urls import path

from frontend import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path(
        "datasets/<int:dataset_id>/stage/<int:stage>/next/",
        views.next_image,
        name="next-image",
    ),
    path("annotate/<int:image_id>/", views.annotate, name="annotate"),
    path("audits/<int:audit_id>/review/", views.review_audit, name="audit-review"),
    path("favicon.ico", views.favicon, name="favicon"),
]
