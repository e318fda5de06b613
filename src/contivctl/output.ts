// How contivctl shows what it found, and how it fails. Every listing command takes `-o table|wide|json|yaml`
// (`--json` stays as the short form of `-o json`), as kubectl, cilium and calicoctl do. An error leads with
// what to do, then what happened, then its details.
import { stringify } from 'yaml';
import { NetpluginUnreachable } from '../api/client';
import { CniError } from '../errors';

export const FORMATS = ['table', 'wide', 'json', 'yaml'] as const;
export type Format = (typeof FORMATS)[number];

/** Exit statuses, the same for every command: 0 clean, 1 findings, 2 usage or error. */
export const Exit = { Clean: 0, Findings: 1, Error: 2 } as const;

/** The format chosen by `-o`, or by `--json`. */
export const formatOf = (o: { output?: string; json?: boolean }): Format => (o.json ? 'json' : ((o.output as Format | undefined) ?? 'table'));

/** Columns of a table; `wide` adds the columns marked wide. */
export interface Column<T> {
  head: string;
  value: (row: T) => string;
  wide?: boolean;
}

export function table<T>(rows: T[], columns: Column<T>[], wide: boolean): string {
  const shown = columns.filter((c) => wide || !c.wide);
  const cells = [shown.map((c) => c.head), ...rows.map((r) => shown.map((c) => c.value(r)))];
  const widths = shown.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `data` in the chosen format; `text` draws the table (or prose) for table and wide. */
export function render(format: Format, data: unknown, text: (wide: boolean) => string): string {
  if (format === 'json') return JSON.stringify(data, null, 2);
  if (format === 'yaml') return stringify(data).trimEnd();
  return text(format === 'wide');
}

/** What to do about a failure, when it says (a hint), or when contivctl knows it from the failure's kind. */
function whatToDo(err: unknown): string | undefined {
  if (err instanceof NetpluginUnreachable) return 'start the netplugin, or point --socket at the socket it serves';
  const hint = (err as { hint?: unknown })?.hint;
  return typeof hint === 'string' && hint ? hint : undefined;
}

/** A failure as contivctl prints it: what to do first, then what happened, then its details. */
export function explain(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const todo = whatToDo(err);
  const details = err instanceof CniError && err.details && err.details !== todo ? err.details : undefined;
  return [todo ?? message, ...(todo ? [`  ${message}`] : []), ...(details ? [`  ${details}`] : [])].join('\n');
}
