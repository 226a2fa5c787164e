"""The JSON API under ``/api/v1``: one module (and blueprint) per resource."""

from __future__ import annotations

from shared.lifecycle.job_shape import API_PREFIX

__all__ = ["API_PREFIX"]
