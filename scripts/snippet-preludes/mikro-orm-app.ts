// prelude "mikro-orm-app": the app's initialized MikroORM.
declare const orm: import('@mikro-orm/core').MikroORM;
