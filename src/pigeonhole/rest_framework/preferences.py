"""
The user's notification preferences over HTTP: the REST twin of the preferences page.

``GET preferences/`` returns every category with the user's current choice per
channel; ``PATCH preferences/`` takes the same shape back, so a client can
fetch, flip a switch and send the document again. A change is all or nothing:
one bad category or channel refuses the whole request and records nothing.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..categories import Category, get_categories, get_preferences, set_preference
from .parsers import safe_parser_classes
from .schema import document

__all__ = ["CategoryPreferenceSerializer", "ExportView", "PreferencesSerializer", "PreferencesView"]


def _known(categories: dict[str, Category]) -> str:
    return ", ".join(repr(slug) for slug in categories)


class CategoryPreferenceSerializer(serializers.Serializer):
    """One category: its slug, label, whether users may change it, and each channel's switch."""

    slug = serializers.CharField(allow_blank=True, help_text='The category; "" for other messages.')
    label = serializers.CharField(read_only=True)
    optional = serializers.BooleanField(
        read_only=True, help_text="False when the site fixed this category's channels."
    )
    channels = serializers.DictField(
        child=serializers.BooleanField(),
        help_text='Channel name ("inbox", "email", "digest") to whether it is on.',
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        categories = get_categories()
        category = categories.get(attrs["slug"])
        if category is None:
            raise serializers.ValidationError(
                {"slug": [f"No category {attrs['slug']!r}; this site has {_known(categories)}."]}
            )
        unknown = sorted(set(attrs["channels"]) - set(category.channels))
        if unknown:
            raise serializers.ValidationError(
                {
                    "channels": [
                        f"Category {category.slug!r} has no channel {', '.join(unknown)}; "
                        f"its channels are {', '.join(category.channels)}."
                    ]
                }
            )
        if not category.optional:
            # Sending a fixed category back unchanged is fine: clients round-trip GET.
            changed = [
                channel
                for channel, on in attrs["channels"].items()
                if on != category.default(channel)
            ]
            if changed:
                raise serializers.ValidationError(
                    {"channels": [f"Category {category.slug!r} is fixed by the site."]}
                )
        attrs["category"] = category
        return attrs


class PreferencesSerializer(serializers.Serializer):
    """Every category, in the order the site declared them, then other messages."""

    categories = CategoryPreferenceSerializer(many=True)

    def validate_categories(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        slugs = [item["slug"] for item in value]
        repeated = sorted({slug for slug in slugs if slugs.count(slug) > 1})
        if repeated:
            raise serializers.ValidationError(
                f"Each category may appear once; repeated: {_known(dict.fromkeys(repeated))}."
            )
        return value


def preferences_document(user: Any) -> dict[str, Any]:
    """Return ``user``'s choices in the shape ``GET preferences/`` answers with."""
    current = get_preferences(user)
    return {
        "categories": [
            {
                "slug": category.slug,
                "label": str(category.label),
                "optional": category.optional,
                "channels": {
                    channel: current[(category.slug, channel)] for channel in category.channels
                },
            }
            for category in get_categories().values()
        ]
    }


class ExportView(APIView):
    """The user's own stored data, as ``pigeonhole.export_user()`` returns it."""

    permission_classes = [permissions.IsAuthenticated]
    throttle_scope = "pigeonhole"

    @document(responses={200: {"type": "object"}})
    def get(self, request: Request) -> Response:
        """Return every message, state, preference and muted thread stored for the user."""
        from .. import api

        return Response(api.export_user(request.user))


class PreferencesView(APIView):
    """Read and change which categories reach the user, by which channel."""

    parser_classes = safe_parser_classes()
    permission_classes = [permissions.IsAuthenticated]
    throttle_scope = "pigeonhole"

    @document(responses={200: PreferencesSerializer})
    def get(self, request: Request) -> Response:
        """Return every category with the user's choice per channel."""
        return Response(preferences_document(request.user))

    @document(request=PreferencesSerializer, responses={200: PreferencesSerializer})
    def patch(self, request: Request) -> Response:
        """
        Change the channels named; leave the rest as they are.

        Categories and channels left out keep their current value, so a client
        may send just ``{"categories": [{"slug": "news", "channels": {"email": false}}]}``.
        """
        serializer = PreferencesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            for item in serializer.validated_data["categories"]:
                category = item["category"]
                if not category.optional:
                    continue
                for channel, on in item["channels"].items():
                    set_preference(request.user, category.slug, channel, on)
        return Response(preferences_document(request.user))
