"""Stored media: product photos, served from PHOTO_DIR under their generated names."""
