"""The ping ledger: outcomes, events, stores, reconciliation."""
