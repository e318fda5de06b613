// The release, from package.json (one source): every binary's --version, /healthz and the daemon's first log line.
import packageJson from '../package.json';

export const VERSION: string = packageJson.version;
