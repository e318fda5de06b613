// Build step (run by Bun before tsc): writes src/generated/validators.ts, one plain checking function per zod
// schema that the exec'd adapter and the client decode, generated from the schema's JSON Schema
// (z.toJSONSchema, io: input, anything unrepresentable refused). zod stays the one source of truth for the wire,
// the CNI environment and the configuration; the adapter runs the generated code instead of building and
// walking zod schemas, which was most of its start-up (~3 ms of ~20, measured). A refinement zod cannot express
// in JSON Schema fails the build here rather than being dropped.
//
// Semantics, the same as zod's for these schemas: every property is checked, `required` is enforced, and keys
// a schema does not name are accepted (zod strips them from z.object's output; nothing here depends on their
// absence). The value is returned as given.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as z from 'zod/mini';
import {
  endpointSchema,
  fixLeaksRequestSchema,
  gcRequestSchema,
  healthSchema,
  podAttrSchema,
  queuedDelSchema,
  rspAddPodSchema,
  rspCheckPodSchema,
  rspDelPodSchema,
  rspFixLeaksSchema,
  rspGcSchema,
} from '../src/api/wire';
import { envSchema, netConfSchema } from '../src/cni/schemas';
import { blockRecordSchema, ipRecordSchema, nodeRecordSchema } from '../src/etcd/records';

/** Each generated checker: its name, the type it proves (an `import type` of the file that defines it), the schema. */
const CHECKERS: { name: string; type: string; from: string; schema: z.ZodMiniType }[] = [
  { name: 'checkEnv', type: 'CniEnvInput', from: '../cni/schemas', schema: envSchema },
  { name: 'checkNetConf', type: 'NetConfInput', from: '../cni/schemas', schema: netConfSchema },
  { name: 'checkRspAddPod', type: 'RspAddPod', from: '../api/wire', schema: rspAddPodSchema() },
  { name: 'checkRspDelPod', type: 'RspDelPod', from: '../api/wire', schema: rspDelPodSchema() },
  { name: 'checkRspCheckPod', type: 'RspCheckPod', from: '../api/wire', schema: rspCheckPodSchema() },
  { name: 'checkRspGc', type: 'RspGc', from: '../api/wire', schema: rspGcSchema() },
  { name: 'checkRspFixLeaks', type: 'RspFixLeaks', from: '../api/wire', schema: rspFixLeaksSchema() },
  { name: 'checkHealth', type: 'Health', from: '../api/wire', schema: healthSchema() },
  { name: 'checkEndpoints', type: 'Endpoint[]', from: '../api/wire', schema: z.array(endpointSchema()) },
  { name: 'checkQueuedDel', type: 'QueuedDel', from: '../api/wire', schema: queuedDelSchema() },
  { name: 'checkPodAttr', type: 'PodAttr', from: '../api/wire', schema: podAttrSchema() },
  { name: 'checkGcRequest', type: 'GcRequest', from: '../api/wire', schema: gcRequestSchema() },
  { name: 'checkFixLeaksRequest', type: 'FixLeaksRequest', from: '../api/wire', schema: fixLeaksRequestSchema() },
  { name: 'checkNodeRecord', type: 'NodeRecord', from: '../etcd/records', schema: nodeRecordSchema },
  { name: 'checkBlockRecord', type: 'BlockRecord', from: '../etcd/records', schema: blockRecordSchema },
  { name: 'checkIpRecord', type: 'IpRecord', from: '../etcd/records', schema: ipRecordSchema },
];

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: unknown;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  format?: string;
  description?: string;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
}

const KNOWN = new Set([
  '$schema',
  'type',
  'properties',
  'required',
  'additionalProperties',
  'propertyNames',
  'items',
  'anyOf',
  'enum',
  'const',
  'pattern',
  'format',
  'description',
  'minLength',
  'maxLength',
  'maxItems',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
]);

/** Generates checking functions into `out`; each takes (v, path, issues) and pushes "path: problem" strings. */
class Generator {
  readonly functions: string[] = [];
  readonly regexes: string[] = [];
  /** One function per distinct schema: many fields share one (a plain optional string). */
  private readonly named = new Map<string, string>();

  private regex(pattern: string): string {
    const i = this.regexes.indexOf(pattern);
    if (i >= 0) return `re${i}`;
    this.regexes.push(pattern);
    return `re${this.regexes.length - 1}`;
  }

  /** The name of a function checking `s`. */
  fn(s: JsonSchema): string {
    const key = JSON.stringify(s);
    const known = this.named.get(key);
    if (known) return known;
    for (const k of Object.keys(s))
      if (!KNOWN.has(k)) throw new Error(`gen-validators: JSON Schema keyword ${k} is not supported (${JSON.stringify(s).slice(0, 120)})`);
    const name = `c${this.functions.length}`;
    this.functions.push('');
    this.named.set(key, name);
    const body: string[] = [];
    const fail = (msg: string) => `e.push((p || '(root)') + ${JSON.stringify(`: ${msg}`)})`;
    if (s.anyOf) {
      const alts = s.anyOf.map((a) => this.fn(a));
      // the first alternative that passes wins; otherwise the issues of one whose type matches, for a useful message
      body.push(`const tries = [${alts.join(', ')}].map((f) => { const x: string[] = []; f(v, p, x); return x; });`);
      body.push(`if (tries.some((x) => x.length === 0)) return;`);
      body.push(`const typed = tries.find((x) => !x.some((m) => m.includes(': expected ')));`);
      body.push(`if (typed) e.push(...typed); else ${fail('matches none of the allowed shapes')};`);
    } else {
      if (s.const !== undefined) body.push(`if (v !== ${JSON.stringify(s.const)}) return void ${fail(`expected ${JSON.stringify(s.const)}`)};`);
      if (s.enum)
        body.push(`if (!${JSON.stringify(s.enum)}.includes(v)) return void ${fail(`expected one of ${s.enum.map((x) => JSON.stringify(x)).join('|')}`)};`);
      switch (s.type) {
        case 'string':
          body.push(`if (typeof v !== 'string') return void ${fail('expected string')};`);
          if (s.minLength !== undefined) body.push(`if (v.length < ${s.minLength}) ${fail(`shorter than ${s.minLength}`)};`);
          if (s.maxLength !== undefined) body.push(`if (v.length > ${s.maxLength}) ${fail(`longer than ${s.maxLength}`)};`);
          if (s.pattern !== undefined) {
            const what = s.description ?? (s.format ? `not a valid ${s.format}` : `does not match ${s.pattern}`);
            body.push(`if (!${this.regex(s.pattern)}.test(v)) ${fail(what)};`);
          }
          break;
        case 'number':
        case 'integer':
          body.push(`if (typeof v !== 'number' || !Number.isFinite(v)) return void ${fail('expected number')};`);
          if (s.type === 'integer') body.push(`if (!Number.isInteger(v)) return void ${fail('expected integer')};`);
          if (s.minimum !== undefined) body.push(`if (v < ${s.minimum}) ${fail(`less than ${s.minimum}`)};`);
          if (s.maximum !== undefined) body.push(`if (v > ${s.maximum}) ${fail(`greater than ${s.maximum}`)};`);
          if (s.exclusiveMinimum !== undefined) body.push(`if (v <= ${s.exclusiveMinimum}) ${fail(`not greater than ${s.exclusiveMinimum}`)};`);
          if (s.exclusiveMaximum !== undefined) body.push(`if (v >= ${s.exclusiveMaximum}) ${fail(`not less than ${s.exclusiveMaximum}`)};`);
          break;
        case 'boolean':
          body.push(`if (typeof v !== 'boolean') return void ${fail('expected boolean')};`);
          break;
        case 'null':
          body.push(`if (v !== null) return void ${fail('expected null')};`);
          break;
        case 'array': {
          body.push(`if (!Array.isArray(v)) return void ${fail('expected array')};`);
          if (s.maxItems !== undefined) body.push(`if (v.length > ${s.maxItems}) return void ${fail(`more than ${s.maxItems} items`)};`);
          if (s.items) body.push(`for (let i = 0; i < v.length; i++) ${this.fn(s.items)}(v[i], p + '[' + i + ']', e);`);
          break;
        }
        case 'object': {
          body.push(`if (typeof v !== 'object' || v === null || Array.isArray(v)) return void ${fail('expected object')};`);
          for (const k of s.required ?? []) body.push(`if (!own(v, ${JSON.stringify(k)})) e.push((p ? p + '.' : '') + ${JSON.stringify(`${k}: required`)});`);
          for (const [k, sub] of Object.entries(s.properties ?? {})) {
            const key = JSON.stringify(k);
            body.push(`if (own(v, ${key}) && v[${key}] !== undefined) ${this.fn(sub)}(v[${key}], (p ? p + '.' : '') + ${key}, e);`);
          }
          // a record's values (z.record): the keys the schema does not name, checked against additionalProperties
          if (!s.properties && s.additionalProperties && typeof s.additionalProperties === 'object' && Object.keys(s.additionalProperties).length) {
            body.push(`for (const k of Object.keys(v)) ${this.fn(s.additionalProperties as JsonSchema)}(v[k], (p ? p + '.' : '') + k, e);`);
          }
          break;
        }
        case undefined:
          break;
        default:
          throw new Error(`gen-validators: type ${s.type} is not supported`);
      }
    }
    this.functions[Number(name.slice(1))] = `function ${name}(v, p, e) {\n  ${body.join('\n  ')}\n}`;
    return name;
  }
}

function main(): void {
  const g = new Generator();
  const exported = CHECKERS.map((c) => {
    const json = z.toJSONSchema(c.schema, { io: 'input', unrepresentable: 'throw' }) as JsonSchema;
    return { ...c, root: g.fn(json) };
  });
  const types = new Map<string, Set<string>>();
  for (const c of CHECKERS) {
    const base = c.type.replace('[]', '');
    types.set(c.from, (types.get(c.from) ?? new Set()).add(base));
  }
  const out = [
    '// Generated by scripts/gen-validators.ts from the zod schemas (make build): do not edit, it is rebuilt.',
    '// biome-ignore-all lint: generated code',
    '/* eslint-disable */',
    ...[...types].map(([from, names]) => `import type { ${[...names].sort().join(', ')} } from '${from}';`),
    '',
    '/** A value proved to have a schema\'s shape, or the problems found ("path: problem; ...") . */',
    'export type Checked<T> = { ok: true; value: T } | { ok: false; issues: string };',
    '',
    'const own = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);',
    ...g.regexes.map((r, i) => `const re${i} = new RegExp(${JSON.stringify(r)});`),
    '',
    '// biome-ignore lint: generated checks take and narrow any value',
    ...g.functions.map((f) => f.replace(/^function (\w+)\(v, p, e\)/, 'function $1(v: any, p: string, e: string[]): void')),
    '',
    ...exported.map(
      (c) =>
        `export function ${c.name}(v: unknown): Checked<${c.type}> {\n  const e: string[] = [];\n  ${c.root}(v, '', e);\n` +
        `  return e.length ? { ok: false, issues: e.join('; ') } : { ok: true, value: v as ${c.type} };\n}`,
    ),
    '',
  ].join('\n');
  const file = path.join(__dirname, '../src/generated/validators.ts');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== out) fs.writeFileSync(file, out);
}

main();
