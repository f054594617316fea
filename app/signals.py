"""Signals that let one part of the app react to another without importing it.

Services send them; the web layer listens (e.g. to drop cached catalog pages).
"""

from blinker import Namespace

_signals = Namespace()

#: Sent after anything buyers see in the catalog changed (a product, a supplier, a region).
catalog_changed = _signals.signal("catalog-changed")
