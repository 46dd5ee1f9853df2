/** pino: JSON lines to stdout, pretty-printed (out of process) when stdout is a terminal. */
import { pino, type Logger } from 'pino';

export function makeLogger(level = process.env.PINLEDGER_LOG_LEVEL ?? 'info'): Logger {
  if (process.stdout.isTTY) {
    return pino({ level, transport: { target: 'pino-pretty', options: { colorize: true } } });
  }
  return pino({ level }, pino.destination({ fd: 1, sync: true }));
}
