// The dependency direction, checked over every relative import: each package of src/ may use only the ones
// listed for it (the protocol and the wire never reach into the daemon or the CLI, shared code lives in a
// neutral package), src/ never imports tests, the testbed or scripts, and scripts never import tests.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { ROOT } from '../../testbed/sys';

/** What each package may import; the key '' is a file at the root of src/ (errors.ts). */
const ALLOWED: Record<string, string[]> = {
  // a file at the root of src/: errors.ts, version.ts, decode.ts (which checks with generated code)
  '': ['generated'],
  ip: [],
  log: ['linux'],
  linux: ['errors', 'ip'],
  errors: [],
  version: [],
  // generated from the schemas in api, cni and etcd, whose types it names (scripts/gen-validators.ts)
  generated: ['api', 'cni', 'etcd'],
  api: ['decode', 'errors', 'generated', 'linux'],
  cni: ['decode', 'errors', 'generated', 'ip', 'linux', 'api/routes', 'api/wire'],
  netns: ['errors', 'linux'],
  // the adapter's commands (the exec'd main is cli/contivk8s.ts)
  adapter: ['api', 'cni', 'errors', 'log', 'netns'],
  etcd: ['decode', 'errors', 'generated'],
  netplugin: ['api', 'decode', 'errors', 'etcd', 'generated', 'ip', 'linux', 'log', 'netns', 'version'],
  contivctl: ['api', 'cni', 'errors', 'etcd', 'generated', 'ip', 'linux', 'netns', 'version'],
  cli: ['adapter', 'api', 'cni', 'contivctl', 'errors', 'etcd', 'ip', 'linux', 'log', 'netns', 'netplugin', 'version'],
};
/** Imports outside src/ that a file of src/ may make: the version comes from package.json, one source. */
const OUTSIDE_SRC: Record<string, string> = { [path.join('src', 'version.ts')]: 'package.json' };

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return sources(rel);
    return e.name.endsWith('.ts') ? [rel] : [];
  });
}

/** Every relative module a file imports (static, dynamic, require), as a path from the repository root. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s+|import\s*\(\s*|require\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
  return specs.map((s) => path.normalize(path.join(path.dirname(file), s)).replace(/\.js$/, ''));
}

/** The package of a path under src/ ('' for a file at its root), with the file for rules that name one. */
function packageOf(p: string): { pkg: string; module: string } {
  const parts = p.split(path.sep).slice(1);
  return parts.length === 1 ? { pkg: '', module: parts[0].replace(/\.ts$/, '') } : { pkg: parts[0], module: `${parts[0]}/${parts[1].replace(/\.ts$/, '')}` };
}

describe('unit: the dependency direction', () => {
  it('each package of src/ imports only the packages it may', () => {
    const violations: string[] = [];
    for (const file of sources('src')) {
      const from = packageOf(file).pkg;
      for (const target of importsOf(file)) {
        if (!target.startsWith(`src${path.sep}`)) {
          if (OUTSIDE_SRC[file] !== target) violations.push(`${file} imports ${target}, outside src/`);
          continue;
        }
        const to = packageOf(target);
        if (to.pkg === from) continue;
        const allowed = ALLOWED[from] ?? [];
        // a file at the root of src/ is its own package (errors.ts is 'errors')
        const name = to.pkg === '' ? to.module : to.pkg;
        if (!allowed.includes(name) && !allowed.includes(to.module)) violations.push(`${file} (${from || 'src'}) imports ${target} (${name})`);
      }
    }
    expect(violations).to.deep.equal([]);
  });

  it('only the kernel layer (src/linux) talks rtnetlink or execs iproute2', () => {
    const offenders = sources('src').filter((file) => {
      if (file.startsWith(path.join('src', 'linux') + path.sep)) return false;
      const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
      return /from 'netlink'|require\('netlink'\)|exec\w*\(\s*'(ip|bridge|nsenter)'/.test(text);
    });
    expect(offenders).to.deep.equal([]);
  });

  it('the validators generator reaches no generated code through what it imports (a fresh clone has none yet)', () => {
    const reached = new Set<string>();
    const walk = (file: string) => {
      for (const target of importsOf(file)) {
        const ts = `${target}.ts`;
        if (reached.has(ts) || !fs.existsSync(path.join(ROOT, ts))) continue;
        reached.add(ts);
        walk(ts);
      }
    };
    walk(path.join('scripts', 'gen-validators.ts'));
    expect(reached.size).to.be.above(0);
    expect([...reached].filter((f) => f.startsWith(path.join('src', 'generated')) || importsOf(f).some((t) => t.includes('generated')))).to.deep.equal([]);
  });

  it('every package of src/ has a rule (a new one must say what it may use)', () => {
    const pkgs = new Set(
      sources('src')
        .map((f) => packageOf(f).pkg)
        .filter(Boolean),
    );
    expect([...pkgs].filter((p) => !(p in ALLOWED))).to.deep.equal([]);
  });

  it('the testbed imports only src/, and scripts only src/ and the testbed', () => {
    const bad = [
      ...sources('testbed').flatMap((f) =>
        importsOf(f)
          .filter((t) => !t.startsWith(`src${path.sep}`) && !t.startsWith(`testbed${path.sep}`))
          .map((t) => `${f} imports ${t}`),
      ),
      ...sources('scripts').flatMap((f) =>
        importsOf(f)
          .filter((t) => !/^(src|testbed|scripts)\//.test(t))
          .map((t) => `${f} imports ${t}`),
      ),
    ];
    expect(bad).to.deep.equal([]);
  });
});
