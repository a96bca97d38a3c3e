"""WebDAV front end: wsgidav with our own provider over the core document services."""
