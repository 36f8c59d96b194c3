import { LoggerService } from '@nestjs/common';
import pino, { DestinationStream, Logger as Pino } from 'pino';
import { currentCorrelation } from './correlation';
import { redact, SecretRegistry, secretRegistry } from './redaction';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export type LogFields = Record<string, unknown>;

/** How long a buffered line may wait before it is written. */
export const LOG_BUFFER_FLUSH_MS = 250;

/**
 * Structured JSON logs. Every line passes through `redact` (credential-named fields, registered
 * secrets) and carries the current correlation id. Services log through this class only.
 */
export class KeywardLogger {
  private constructor(
    private readonly pino: Pino,
    private readonly registry: SecretRegistry,
    /** The stdout stream when it is ours, so `flush` can drain it before the process exits. */
    private readonly stdout?: { flushSync(): void },
  ) {}

  static create(
    service: string,
    level: LogLevel = 'info',
    options: {
      destination?: DestinationStream;
      registry?: SecretRegistry;
      /**
       * Collect lines up to this many bytes and write them together, at least every
       * LOG_BUFFER_FLUSH_MS and at exit (pino flushes on the process's exit event): for a service
       * that logs every call, where a write per line costs more than the line (ADR 0028).
       * 0 (default): each line is written as it comes.
       */
      bufferBytes?: number;
    } = {},
  ): KeywardLogger {
    const buffered = options.bufferBytes ? { minLength: options.bufferBytes, periodicFlush: LOG_BUFFER_FLUSH_MS } : {};
    const stdout = options.destination ? undefined : pino.destination({ dest: 1, sync: false, ...buffered });
    const instance = pino(
      {
        level,
        base: { service },
        messageKey: 'msg',
        // Errors are already reduced by `redact` (type, message, stack, code, cause); pino's own
        // err serializer would rename their type to "Object".
        serializers: { err: (value: unknown) => value },
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        mixin: () => {
          const context = currentCorrelation();
          return context ? { correlationId: context.correlationId, ...(context.tenantId ? { tenantId: context.tenantId } : {}) } : {};
        },
      },
      options.destination ?? stdout!,
    );
    return new KeywardLogger(instance, options.registry ?? secretRegistry, stdout);
  }

  child(bindings: LogFields): KeywardLogger {
    return new KeywardLogger(this.pino.child(redact(bindings, this.registry) as LogFields), this.registry, this.stdout);
  }

  trace(msg: string, fields?: LogFields): void {
    this.write('trace', msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    this.write('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.write('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.write('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.write('error', msg, fields);
  }
  fatal(msg: string, fields?: LogFields): void {
    this.write('fatal', msg, fields);
  }

  /** Writes out buffered lines now (before process.exit). */
  flush(): void {
    try {
      this.stdout?.flushSync();
    } catch {
      this.pino.flush(); // not ready yet (nothing written): nothing to lose
    }
  }

  private write(level: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void {
    if (!this.pino.isLevelEnabled(level)) return;
    const clean = this.registry.scrub(String(msg));
    if (fields === undefined) this.pino[level](clean);
    else this.pino[level](redact(fields, this.registry) as LogFields, clean);
  }
}

/** Routes Nest's own log calls (bootstrap, exceptions) through the redacting logger. */
export class NestLoggerAdapter implements LoggerService {
  constructor(private readonly logger: KeywardLogger) {}

  log(message: unknown, ...rest: unknown[]): void {
    this.logger.info(String(message), context(rest));
  }
  error(message: unknown, ...rest: unknown[]): void {
    const fields = context(rest);
    if (message instanceof Error) this.logger.error(message.message, { ...fields, err: message });
    else this.logger.error(String(message), fields);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.logger.warn(String(message), context(rest));
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.logger.debug(String(message), context(rest));
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.logger.trace(String(message), context(rest));
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.logger.fatal(String(message), context(rest));
  }
}

function context(rest: unknown[]): LogFields {
  const fields: LogFields = {};
  for (const item of rest) {
    if (typeof item === 'string' && item.includes('\n')) fields.stack = item;
    else if (typeof item === 'string') fields.context = item;
  }
  return fields;
}
