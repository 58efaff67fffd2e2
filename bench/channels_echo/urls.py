"""No HTTP views: the project serves WebSocket only (HTTP goes to Django's default 404)."""

urlpatterns: list[object] = []
