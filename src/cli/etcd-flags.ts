// The etcd connection flags, the same for `netplugin --store etcd` and `contivctl cluster`.
import type { Command } from 'commander';
import type { EtcdOptions } from '../etcd/connect';

export function withEtcdFlags(cmd: Command, required: boolean): Command {
  const endpoints = 'etcd client URLs, comma-separated (https:// unless --etcd-insecure)';
  required ? cmd.requiredOption('--etcd-endpoints <urls>', endpoints) : cmd.option('--etcd-endpoints <urls>', `cluster mode: ${endpoints}`);
  return cmd
    .option('--etcd-ca <file>', "PEM: the CA that signed etcd's certificate")
    .option('--etcd-cert <file>', "PEM: this client's certificate, for etcd's --client-cert-auth")
    .option('--etcd-key <file>', 'PEM: the key of --etcd-cert')
    .option('--etcd-insecure', 'allow http:// etcd endpoints (no TLS); refused without it');
}

export interface EtcdFlags {
  etcdEndpoints?: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdInsecure?: boolean;
}

export function etcdOptions(o: EtcdFlags): EtcdOptions {
  return {
    endpoints: String(o.etcdEndpoints ?? '')
      .split(',')
      .filter(Boolean),
    ca: o.etcdCa,
    cert: o.etcdCert,
    key: o.etcdKey,
    insecure: o.etcdInsecure,
  };
}
