"""Widgets and Qt models that more than one dock uses; no dock imports another dock."""
