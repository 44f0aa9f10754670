// prelude "sqlite-db": the app's own better-sqlite3 connection, with a books table.
declare const db: import('better-sqlite3').Database;
