"""The mitmproxy side of Kleis: the addon and the plain per-request functions its hooks call."""
