"""FROZEN helpers of the migration revisions: copies of what a revision needs from tracker, as it
was when the revision was written. A revision imports only the standard library, alembic,
sqlalchemy and these modules, so that a later change to tracker never changes what an old
revision does (tests/test_migrations.py checks both)."""
