"""The JSON API under ``/api/v1``: one module (and blueprint) per resource."""

from __future__ import annotations

API_PREFIX = "/api/v1"
