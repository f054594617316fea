"""The public board for the lobby screen, and its data as JSON under /api/v1."""
