"""Canteen bulk procurement: the quick order sheet, bulk orders, approval and goods-in."""
