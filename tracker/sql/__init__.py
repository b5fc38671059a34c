"""The SQL backend (SQLite and PostgreSQL): models, engine, error translation, unit of work and
the repository. Imported only when a SQL store is opened."""
