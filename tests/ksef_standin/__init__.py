"""A KSeF 2.0 stand-in for the tests, built from the Ministry's API description."""
