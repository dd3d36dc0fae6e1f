"""Persistence of the desired state behind one small interface (`Store`/`Tx` in sqlite.py):
the SQLite implementation, its row codec, the command lock and schema migrations."""
