"""This replica's share of the downloads: actions, claims, leases kept alive, commands, drain."""
