// JSON in, a checked value out: the one way every message this project reads is decoded (a request body, an
// answer, a network configuration, a queued DEL, an etcd record). The checks are the functions
// scripts/gen-validators.ts generates from the zod schemas, so the code that decodes never loads zod.
import { CniError } from './errors';
import type { Checked } from './generated/validators';

/**
 * How a refusal is reported: the CNI code and the message, for input that is not JSON (its details: the
 * parser's error unless given) and for JSON of the wrong shape (its details: each problem by path).
 */
export interface Refusal {
  notJson: { code: number; msg: string; details?: string };
  invalid: { code: number; msg: string };
}

/** Parses `text` and checks it; a refusal names what was wrong (the parser's error, or each problem by path). */
export function decodeJson<T>(text: string, check: (v: unknown) => Checked<T>, refusal: Refusal): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CniError(refusal.notJson.code, refusal.notJson.msg, refusal.notJson.details ?? (err as Error).message, { cause: err });
  }
  const checked = check(json);
  if (!checked.ok) throw new CniError(refusal.invalid.code, refusal.invalid.msg, checked.issues);
  return checked.value;
}
