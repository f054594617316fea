"""Invoices and credit notes for canteen deliveries, and their bank-transfer payments."""
