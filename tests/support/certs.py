"""Real X.509 certificates for TLS tests (mediadl_common.devcerts, made with `cryptography`): a CA, server
and client certificates signed by it, expired ones, and other CAs for "wrong CA" cases."""

from __future__ import annotations

from mediadl_common.devcerts import CertificateAuthority, Issued


class TestCa(CertificateAuthority):
    """A CA for one test; its name says so in the certificates."""

    __test__ = False  # not a pytest test class


__all__ = ["Issued", "TestCa"]
