"""The tamper-evident audit trail: hash-chained events and signed chain heads."""
