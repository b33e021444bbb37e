"""Run the tap with ``python -m tap_zoho_crm``."""

from tap_zoho_crm.tap import TapZohoCRM

TapZohoCRM.cli()
