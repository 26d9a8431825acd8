"""RO e-Factura: Romanian invoices uploaded to ANAF, exactly once."""
