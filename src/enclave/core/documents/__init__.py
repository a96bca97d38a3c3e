"""Document libraries: folders, documents with versions, grants, trash, holds."""
