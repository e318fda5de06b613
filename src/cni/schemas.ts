// The CNI environment and network configuration as zod schemas: the source of truth for both. The exec'd
// adapter checks them with the functions scripts/gen-validators.ts generates from these at build time
// (src/generated/validators.ts), so it never loads zod; these are also what the types come from. Nothing
// here may import the generated code (directly or not): the generator imports this file.
import * as z from 'zod/mini';
import { attachmentRefSchema } from '../api/wire';
import { MAX_TIMEOUT_MS } from './limits';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'] as const;

export const envSchema = z.object({
  CNI_COMMAND: z.enum(COMMANDS),
  CNI_CONTAINERID: z.optional(z.string()),
  CNI_NETNS: z.optional(z.string()),
  CNI_IFNAME: z.optional(z.string()),
  CNI_ARGS: z.optional(z.string()),
  CNI_PATH: z.optional(z.string()),
});
export type CniEnvInput = z.infer<typeof envSchema>;

const ipConfigSchema = z.looseObject({
  address: z.string(),
  gateway: z.optional(z.string()),
  interface: z.optional(z.number()),
});
const prevResultSchema = z.looseObject({
  interfaces: z.optional(z.array(z.looseObject({ name: z.string(), mac: z.optional(z.string()), sandbox: z.optional(z.string()) }))),
  ips: z.optional(z.array(ipConfigSchema)),
});
export type PrevResult = z.infer<typeof prevResultSchema>;

export const netConfSchema = z.looseObject({
  cniVersion: z.string(),
  name: z.optional(z.string()),
  type: z.optional(z.string()),
  socket: z.optional(z.string().check(z.minLength(1))),
  logFile: z.optional(z.string().check(z.regex(/^\//)).register(z.globalRegistry, { description: 'must be an absolute path' })),
  logLevel: z.optional(z.enum(['error', 'warn', 'info', 'debug'])),
  // as Calico's log_file_max_size (MiB) and log_file_max_files
  logFileMaxSize: z.optional(z.number().check(z.positive(), z.lte(1 << 20))),
  logFileMaxFiles: z.optional(z.number().check(z.int(), z.gte(1), z.lte(1000))),
  timeoutMs: z.optional(z.number().check(z.int(), z.positive(), z.lte(MAX_TIMEOUT_MS))),
  // as the reference bridge plugin names them
  hairpinMode: z.optional(z.boolean()),
  isDefaultGateway: z.optional(z.boolean()),
  args: z.optional(z.record(z.string(), z.unknown())),
  runtimeConfig: z.optional(z.record(z.string(), z.unknown())),
  prevResult: z.optional(prevResultSchema),
  // libcni (v1.2+: containerd, CRI-O's ocicni) sends null, not [], when no attachment is valid
  'cni.dev/valid-attachments': z.optional(z.nullable(z.array(attachmentRefSchema()))),
  'cni.dev/attachments': z.optional(z.nullable(z.array(attachmentRefSchema()))),
});
export type NetConfInput = z.infer<typeof netConfSchema>;
