"""Tests of the download server."""
