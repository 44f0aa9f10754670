// prelude "postgres-js": the app's postgres.js client.
declare const sql: import('postgres').Sql;
