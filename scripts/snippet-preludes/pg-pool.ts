// prelude "pg-pool": the app's own PostgreSQL pool, with a books table.
declare const pool: import('pg').Pool;
