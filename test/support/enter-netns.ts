// Child-process helper for tests: enters the namespace at argv[2] the way the adapter does, then reports
// what /proc/<pid>/ns/net is afterwards. setns must not run in mocha's own process.
import * as fs from 'node:fs';
import { asCniError } from '../../src/errors';
import { enterNetns, openNetns } from '../../src/netns/netns';

try {
  const ns = openNetns(process.argv[2], 'the test helper');
  const before = fs.statSync(`/proc/${process.pid}/ns/net`).ino;
  enterNetns(ns);
  const after = fs.statSync(`/proc/${process.pid}/ns/net`);
  process.stdout.write(JSON.stringify({ ok: true, target: { dev: ns.dev, ino: ns.ino }, before, after: { dev: after.dev, ino: after.ino } }));
} catch (err) {
  const e = asCniError(err);
  process.stdout.write(JSON.stringify({ ok: false, code: e.code, msg: e.message, details: e.details }));
}
