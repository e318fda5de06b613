import type * as z from 'zod/mini';

/** Flattens a zod error into one line that names each offending field. */
export function describeIssues(error: z.core.$ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}
