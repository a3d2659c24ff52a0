"""Shared fixtures: offscreen Qt, no network, and a private litdesk home per test."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def litdesk_home(tmp_path_factory, monkeypatch):
    """Settings, cache and data go to a fresh folder, never the user's."""
    home = tmp_path_factory.mktemp("litdesk_home")
    monkeypatch.setenv("LITDESK_HOME", str(home))
    return home
