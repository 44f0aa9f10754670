// prelude "web": the app's own sign-in and request handling, which resthooks does not provide.
declare const authenticate: import('resthooks/api').ApiOptions['authenticate'];
declare const authorize: import('resthooks/api').AdminPageOptions['authorize'];
declare const sessions: {
  user(request: Request): Promise<{ isStaff: boolean } | undefined>;
  fromCookie(cookie: string | null): Promise<{ roles: string[] } | undefined>;
};
declare const users: { findByApiKey(key: string): Promise<{ id: string } | undefined> };
declare function ownerOfApiKey(authorization: string | null): Promise<string | null>;
declare function ownerFromSession(request: Request): Promise<string | null>;
declare function handleRequest(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void;
