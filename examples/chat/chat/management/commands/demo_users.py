"""``manage.py demo_users``: create (or reset) the demo's two accounts and print them.

Idempotent: running it again resets the passwords to the printed ones.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERS = [
    # (username, password, is_staff)
    ("demo", "demo-password", False),
    ("staff", "staff-password", True),
]


class Command(BaseCommand):
    help = "Create the chat demo's users (a regular one and a staff one) and print them."

    def handle(self, *args, **options):
        User = get_user_model()
        for username, password, is_staff in DEMO_USERS:
            user, _created = User.objects.get_or_create(username=username)
            user.is_staff = is_staff
            user.is_superuser = is_staff
            user.set_password(password)
            user.save()
            role = "staff (admin chat and /admin/)" if is_staff else "regular user"
            self.stdout.write(f"  {username} / {password}   {role}")
