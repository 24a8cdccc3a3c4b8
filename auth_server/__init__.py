"""The mediadl auth server: users, passwords and JWT access/refresh tokens over gRPC."""
