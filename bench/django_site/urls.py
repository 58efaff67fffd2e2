from django.urls import path

from bench.django_site import views

urlpatterns = [
    path("page/", views.page),
    path("page-async/", views.page_async),
    path("json/", views.json),
]
