"""The CAS endpoints live under /cas/: /cas/login, /cas/p3/serviceValidate, ..."""

from django.urls import include, path

urlpatterns = [
    path("cas/", include("cas_server.urls", namespace="cas_server")),
]
