"""Tests of the auth server."""
