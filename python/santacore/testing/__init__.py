"""Testing aids: a conformant sync server on loopback. Nothing at run time imports this."""
