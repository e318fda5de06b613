import winston from 'winston';

export type Logger = winston.Logger;

export interface LogOptions {
  /** JSON lines to this file, or to stderr when none is given (stdout stays free for results). */
  file?: string;
  level: string;
  /** The file is rotated past this size: `maxFiles` older ones are kept (<name>1.<ext> the newest of them). */
  maxSizeMiB: number;
  maxFiles: number;
}

export function createLogger(opts: LogOptions & { component: string }): Logger {
  return winston.createLogger({
    level: opts.level,
    defaultMeta: { component: opts.component, pid: process.pid },
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [
      opts.file
        ? new winston.transports.File({ filename: opts.file, maxsize: Math.round(opts.maxSizeMiB * 2 ** 20), maxFiles: opts.maxFiles + 1, tailable: true })
        : new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] }),
    ],
  });
}
