"""Integrations with optimisation libraries. Importing this package imports none of them."""
