from django.urls import path

from tests.asgi_handler.site import views

urlpatterns = [
    path("meta/", views.meta),
    path("meta/<path:rest>", views.meta),
    path("sleep/", views.sleep),
    path("pool-size/", views.pool_size),
    path("db-thread/", views.db_thread),
    path("write/", views.write_then_fail),
    path("notes/", views.notes),
    path("upload/", views.upload),
    path("body-length/", views.body_length),
    path("stream/", views.stream),
    path("endless/", views.endless),
    path("endless-state/", views.endless_state_view),
    path("file/", views.a_file),
    path("async/", views.async_hello),
]
