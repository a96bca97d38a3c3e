"""Alembic environment: runs on the connection handed over by ``enclave.backends.db.migrate``."""

from alembic import context

from enclave.backends.db.schema import metadata
from enclave.backends.search import is_search_table

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    # The search index is derived and rebuildable: its tables live outside the migrations.
    include_name=lambda name, type_, _: not (type_ == "table" and is_search_table(name or "")),
)
with context.begin_transaction():
    context.run_migrations()
