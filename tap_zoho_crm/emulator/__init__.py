"""A local stand-in for Zoho CRM's OAuth, metadata, Bulk Read, Records and Notification APIs.

`Emulator` runs it on a background thread; `tap-zoho-crm-emulator` runs it as a process.
"""

from __future__ import annotations

from .server import Emulator
from .state import Config

__all__ = ["Config", "Emulator"]
