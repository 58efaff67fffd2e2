from django.conf import settings
from django.db import models

#: The staff-only room's name in the database (public room names cannot take it: the
#: ``/ws/chat/admin/`` route always goes to the staff consumer).
ADMIN_ROOM = "admin"


class Message(models.Model):
    room = models.CharField(max_length=50, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    #: Kept as sent, so history survives a deleted account.
    username = models.CharField(max_length=150)
    text = models.TextField()
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"[{self.room}] {self.username}: {self.text[:40]}"

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "room": self.room,
            "user": self.username,
            "text": self.text,
            "created": self.created.isoformat(),
        }
