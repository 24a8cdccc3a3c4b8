"""The mediadl web dashboard: an aiohttp app in front of the gRPC services (`python -m dashboard`)."""
