// Certificates for tests, made with openssl: a CA, an etcd server certificate for the given IPs (also its
// peer certificate), a client certificate signed by the CA, and a second CA that signed nothing we use.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface TestCerts {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed none of these: trusting it instead is the "wrong CA" case. */
  otherCa: string;
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function ca(dir: string, name: string): { crt: string; key: string } {
  const crt = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  openssl(['req', '-x509', ...EC, '-keyout', key, '-out', crt, '-days', '2', '-subj', `/CN=${name}`]);
  return { crt, key };
}

function signed(dir: string, name: string, issuer: { crt: string; key: string }, extensions: string): { crt: string; key: string } {
  const crt = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, extensions);
  openssl(['req', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
  openssl(['x509', '-req', '-in', csr, '-CA', issuer.crt, '-CAkey', issuer.key, '-CAcreateserial', '-out', crt, '-days', '2', '-extfile', ext]);
  return { crt, key };
}

export function makeCerts(dir: string, serverIps: string[]): TestCerts {
  fs.mkdirSync(dir, { recursive: true });
  const root = ca(dir, 'contiv-test-ca');
  const server = signed(dir, 'etcd', root, `subjectAltName=${serverIps.map((ip) => `IP:${ip}`).join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  const client = signed(dir, 'netplugin', root, 'extendedKeyUsage=clientAuth\n');
  const other = ca(dir, 'other-ca');
  return { ca: root.crt, serverCert: server.crt, serverKey: server.key, clientCert: client.crt, clientKey: client.key, otherCa: other.crt };
}
