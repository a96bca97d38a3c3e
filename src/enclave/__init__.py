"""Enclave: a self-hostable, multi-tenant sovereign collaboration cloud."""

__version__ = "0.1.0"
