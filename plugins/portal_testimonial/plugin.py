"""Registers the testimonial step (work in progress: filled in by its plugin package)."""

from __future__ import annotations
