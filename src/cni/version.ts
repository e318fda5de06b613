import { CniError, ErrorCode } from '../errors';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = '1.1.0';

export function isSupportedVersion(v: string): v is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

export function requireSupportedVersion(v: string): CniVersion {
  if (!isSupportedVersion(v)) {
    throw new CniError(ErrorCode.IncompatibleVersion, `incompatible CNI version ${JSON.stringify(v)}`, `supported versions: ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  return v;
}

/** Orders dotted versions numerically ("0.10.0" > "0.4.0"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The lowest spec version that defines each command (CHECK came in 0.4.0, GC and STATUS in 1.1.0). */
const COMMAND_SINCE: Record<string, string> = { CHECK: '0.4.0', GC: '1.1.0', STATUS: '1.1.0' };

export function requireCommandInVersion(command: string, version: CniVersion): void {
  const since = COMMAND_SINCE[command];
  if (since && compareVersions(version, since) < 0) {
    throw new CniError(ErrorCode.IncompatibleVersion, `${command} is not defined for cniVersion ${version}`, `${command} requires cniVersion >= ${since}`);
  }
}
