"""Domain services: no sockets, no SQL strings, no protocol syntax."""
