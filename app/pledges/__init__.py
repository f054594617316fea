"""Pledges: progress, pace and the ledger behind them; offline sales imports; reports."""
