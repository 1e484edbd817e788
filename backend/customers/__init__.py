"""Customers, their cards, households and consents (DESIGN.md section 7)."""
