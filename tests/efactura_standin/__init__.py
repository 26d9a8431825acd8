"""An RO e-Factura stand-in for the tests, built from ANAF's published API descriptions."""
