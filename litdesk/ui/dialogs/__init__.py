"""Dialogs of the main window that are more than a message box."""
