// prelude "api": the REST API, as docs/api.md's first example creates it.
declare const api: import('resthooks/api').ResthooksApi;
