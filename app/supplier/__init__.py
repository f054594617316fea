"""The supplier's side of canteen orders: confirm, reduce, ship, delivery notes."""
