// Bounds that both the zod schema (schemas.ts) and the adapter's code (config.ts) use, in a module that
// imports nothing: the adapter must not load zod (its checks are generated), and the generator must not
// load what it generates.

/** A runtime waits minutes at most; a longer timeout would also overflow a timer. */
export const MAX_TIMEOUT_MS = 600_000;
