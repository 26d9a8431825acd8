"""Poland's KSeF: the FA(3) document, its QR codes, and the client that sends it."""
