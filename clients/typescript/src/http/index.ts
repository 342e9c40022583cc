// RateLimit header fields and HTTP middleware: filled in by the HTTP work.
export {};
