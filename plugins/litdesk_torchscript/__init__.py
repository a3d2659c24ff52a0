"""First-party litdesk plugin."""
