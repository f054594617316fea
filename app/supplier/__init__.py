"""The supplier portal: canteen deliveries, listings, photos, stock, imports, profile, dashboard."""
