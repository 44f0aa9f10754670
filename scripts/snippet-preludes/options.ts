// prelude "options": the createHooks() options a snippet passes on without showing them again.
declare const events: { 'book.added': 'Book.created'; 'book.changed': 'Book.updated+'; 'user.logged_in': null };
declare const store: import('resthooks').StoreDialect;
declare const finder: import('resthooks').Finder;
declare const sharedOptions: Omit<import('resthooks').HooksOptions<keyof typeof events>, 'queue'>;
