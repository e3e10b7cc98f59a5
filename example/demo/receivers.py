"""Signing in and out leaves messages, as in django-stored-messages' tutorial."""

from django.contrib import messages
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver
from django.utils import timezone

import pigeonhole


@receiver(user_logged_in, dispatch_uid="demo-signed-in")
def signed_in(sender, request, user, **kwargs):
    # Persistent: stored in the user's inbox, and shown until read.
    pigeonhole.success(
        request,
        f"You signed in at {timezone.now():%H:%M:%S} UTC.",
        subject=f"Welcome back, {user.get_username()}",
    )


@receiver(user_logged_out, dispatch_uid="demo-signed-out")
def signed_out(sender, request, user, **kwargs):
    # After sign-out the visitor is anonymous: a plain flash message, shown once.
    messages.info(request, "You signed out. Your stored messages wait for your next visit.")
