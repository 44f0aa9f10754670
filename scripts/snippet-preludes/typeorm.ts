// prelude "typeorm": the app's TypeORM data source.
declare const dataSource: import('typeorm').DataSource;
