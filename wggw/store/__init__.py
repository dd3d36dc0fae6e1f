"""Persistence of the desired state behind one small interface (`Store`/`Tx` in sqlite.py):
the SQLite implementation, the PostgreSQL one (postgres.py, pgsql.py), which of them a command
uses (select.py), the row codec, secrets sealed at rest (sealed.py, rekey.py), the command lock,
schema migrations, and the move from SQLite to PostgreSQL (pgcopy.py)."""
