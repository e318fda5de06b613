import * as fs from 'node:fs';
import * as path from 'node:path';
import { FIXTURES } from '../../testbed/sys';

export interface RuntimeFixture {
  file: string;
  runtime: string;
  netnsKind: 'proc-pid' | 'named';
  convention: string;
  add: { env: Record<string, string>; stdin: Record<string, unknown> };
  del: { env: Record<string, string> };
}

export function runtimeFixtures(): RuntimeFixture[] {
  const dir = path.join(FIXTURES, 'runtimes');
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ file: f, ...JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) }));
}
