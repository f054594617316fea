"""Coordinators' review of suppliers' listings before buyers see them."""
