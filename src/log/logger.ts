import winston from 'winston';

export type Logger = winston.Logger;

/** JSON lines to `file`, or to stderr when no file is given (stdout stays free for results). */
export function createLogger(opts: { file?: string; level?: string; component: string }): Logger {
  return winston.createLogger({
    level: opts.level ?? 'info',
    defaultMeta: { component: opts.component, pid: process.pid },
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [
      opts.file ? new winston.transports.File({ filename: opts.file }) : new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] }),
    ],
  });
}
