"""Talking to origins: the aiohttp fetcher, retries, the URL policy and its guard, error classification."""
