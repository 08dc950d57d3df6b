"""The history store: every sweep's measurements in one embedded SQLite file.

:mod:`.store` owns the connection (WAL, busy timeout, retried transactions),
:mod:`.schema` the versioned schema and its migrations, :mod:`.retention`
downsampling and deletion of old rows, :mod:`.trend` sparklines (pure).
"""
