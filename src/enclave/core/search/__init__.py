"""The encrypted search index shared by every workload (``index``), its job queue
(``queue``) and the pure tokeniser (``tokens``)."""
