"""Webhook receiver for Zoho CRM notifications: ASGI app (``app.py``) and CLI (``cli.py``)."""
