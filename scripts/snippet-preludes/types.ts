// prelude "types": the names a signature uses, as the reader's own imports would bring them.
type Hooks = import('resthooks').Hooks;
type Logger = import('resthooks').Logger;
type DataSource = import('typeorm').DataSource;
type MikroORM = import('@mikro-orm/core').MikroORM;
