"""Singer tap for Zoho CRM, with a webhook receiver and a local Zoho emulator."""
