// prelude "hooks": the engine, as the README's "Concepts" create it.
declare const hooks: import('resthooks').Hooks<'book.added' | 'book.changed' | 'book.removed' | 'book.read' | 'user.logged_in'>;
