"""
``manage.py demo_setup``: the demo's users, group and welcome messages.

Safe to run again and again: it creates what is missing, puts the demo
passwords back if they were changed, and sends the welcome messages only when
it has just created the demo users.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

import pigeonhole

from ...accounts import DEMO_ACCOUNTS, STAFF_GROUP


class Command(BaseCommand):
    help = "Create the demo users (alice, bob, admin), the group 'staff' and welcome messages."

    def add_arguments(self, parser):
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000/",
            help="The address to print for the site (default: %(default)s).",
        )

    def handle(self, *args, url: str, **options) -> None:
        User = get_user_model()
        with transaction.atomic():
            users, created = {}, []
            for username, password, _ in DEMO_ACCOUNTS:
                user, is_new = User.objects.get_or_create(username=username)
                superuser = username == "admin"
                changed = is_new or not user.check_password(password)
                if changed:
                    user.set_password(password)
                email = f"{username}@example.com"  # emails go to demo/mail.py's backend
                if user.email != email:
                    user.email = email
                    changed = True
                if user.is_staff != superuser or user.is_superuser != superuser:
                    user.is_staff = user.is_superuser = superuser
                    changed = True
                if changed:
                    user.save()
                users[username] = user
                if is_new:
                    created.append(username)

            staff, _ = Group.objects.get_or_create(name=STAFF_GROUP)
            staff.user_set.add(users["alice"], users["bob"])

            # The logins come first: the emails the welcome sends print on commit, after them.
            self.logins(created, url)
            if {"alice", "bob"} & set(created):
                self.welcome(users, staff)

    def logins(self, created: list[str], url: str) -> None:
        verb = f"created {', '.join(created)}" if created else "already set up"
        self.stdout.write(self.style.SUCCESS(f"Demo {verb}."))
        self.stdout.write("")
        self.stdout.write("  Log in with one of these:")
        for username, password, description in DEMO_ACCOUNTS:
            self.stdout.write(f"    {username:<6}  password {password:<11}  ({description})")
        self.stdout.write("")
        self.stdout.write(f"  Then open {url}")
        self.stdout.write("")

    def welcome(self, users, staff) -> None:
        """Send the first messages, the way any site would: no request needed."""
        admin = users["admin"]
        pigeonhole.send(
            staff,
            "Welcome to the pigeonhole demo! This message went to the whole group “staff” "
            "with one call to pigeonhole.send(). It stays in your inbox until you read it.",
            level=pigeonhole.PERSISTENT_INFO,
            subject="Welcome",
            from_user=admin,
        )
        pigeonhole.send(
            users["alice"],
            "Try it: sign in as bob in a private window, then send him a persistent message "
            "from here and watch it arrive in his inbox without a reload.",
            level=pigeonhole.PERSISTENT_SUCCESS,
            subject="A first thing to try",
            from_user=admin,
        )
        pigeonhole.send(
            users["bob"],
            "Messages you have seen are marked read, not deleted: archive or delete them "
            "from your inbox.",
            level=pigeonhole.PERSISTENT_WARNING,
            from_user=admin,
            url="/messages/?state=archived",
        )
        self.stdout.write("Sent the welcome messages.")
