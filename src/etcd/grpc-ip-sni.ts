// A workaround, in one place: delete this file and its one call in connect.ts when grpc-js stops setting the
// TLS servername to an IP address (https://github.com/grpc/grpc-node/issues/1919; Node's own http2 had the same
// bug, https://github.com/nodejs/node/issues/56189).
//
// grpc-js (1.14.7, the latest) passes the endpoint's host as `servername` even when it is an IP address,
// which Node 26 refuses (DEP0123: SNI carries host names only, RFC 6066). Without a servername Node checks
// the certificate against the host instead, so an IP endpoint is still verified against the certificate's
// IP SANs: dropping it changes nothing else.
import * as net from 'node:net';
import type * as tls from 'node:tls';

/** The etcd endpoints' IP hosts: only a connect naming one of these as servername is changed. */
const etcdIps = new Set<string>();
let patched = false;

/** Lets TLS connections to these etcd IP endpoints be made without an IP servername. */
export function allowIpServerNames(endpoints: string[]): void {
  for (const e of endpoints) {
    const host = new URL(e).hostname.replace(/^\[(.*)\]$/, '$1');
    if (net.isIP(host)) etcdIps.add(host);
  }
  if (patched || !etcdIps.size) return;
  patched = true;
  // the module object itself (grpc-js calls require('tls').connect), not TypeScript's read-only namespace view
  const tlsModule = require('node:tls') as { connect: typeof tls.connect };
  const connect = tlsModule.connect;
  tlsModule.connect = ((options: tls.ConnectionOptions, ...rest: unknown[]) => {
    if (options?.servername && etcdIps.has(options.servername)) options = { ...options, servername: undefined };
    return (connect as (...a: unknown[]) => tls.TLSSocket)(options, ...rest);
  }) as typeof tls.connect;
}
