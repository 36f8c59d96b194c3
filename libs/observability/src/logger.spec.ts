import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { ApiKey } from '@keyward/key-material';
import { KeywardLogger } from './logger';
import { SecretRegistry } from './redaction';
import { withCorrelation } from './correlation';

function capture(): { logger: KeywardLogger; registry: SecretRegistry; lines: () => string[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const registry = new SecretRegistry();
  const logger = KeywardLogger.create('test', 'trace', { destination, registry });
  return { logger, registry, lines: () => chunks.join('').split('\n').filter(Boolean) };
}

const CANARY = 'canary-logger-9b7e5d3c1a2f4e6d';

describe('KeywardLogger redaction', () => {
  it('removes credential-named fields and headers wherever they are nested', () => {
    const { logger, lines } = capture();
    logger.info('request', {
      headers: { authorization: `Basic ${Buffer.from(`${CANARY}:`).toString('base64')}`, 'x-api-key': CANARY },
      body: { apiKey: CANARY, nested: [{ token: CANARY, password: CANARY }] },
      credentialId: 'c-1',
      last4: '4e6d',
    });
    const [line] = lines();
    expect(line).not.toContain(CANARY);
    expect(line).not.toContain(Buffer.from(`${CANARY}:`).toString('base64'));
    expect(JSON.parse(line)).toMatchObject({ credentialId: 'c-1', last4: '4e6d', body: { apiKey: '[redacted]' } });
  });

  it('cuts registered secrets out of messages, free-text fields and errors', () => {
    const { logger, registry, lines } = capture();
    registry.register(CANARY);
    const error = new Error(`upstream said ${CANARY} was bad`, { cause: new Error(`again ${CANARY}`) });
    logger.error(`failed for ${CANARY}`, { err: error, note: `text with ${CANARY} inside` });
    const [line] = lines();
    expect(line).not.toContain(CANARY);
    expect(line).toContain('[redacted]');
    expect(JSON.parse(line).err).toMatchObject({ type: 'Error', message: 'upstream said [redacted] was bad', cause: { message: 'again [redacted]' } });
  });

  it('shows an ApiKey passed by mistake only as redacted', () => {
    const { logger, lines } = capture();
    logger.warn('oops', { value: ApiKey.fromTrusted(CANARY) });
    expect(lines()[0]).not.toContain(CANARY);
  });

  it('carries the correlation id of the current flow', () => {
    const { logger, lines } = capture();
    withCorrelation({ correlationId: 'corr-12345678', tenantId: 't-1' }, () => logger.info('inside'));
    expect(JSON.parse(lines()[0])).toMatchObject({ correlationId: 'corr-12345678', tenantId: 't-1', service: 'test' });
  });
});

describe('KeywardLogger with buffered lines (a service that logs every call)', () => {
  /** A process that logs through a buffered stdout logger, then does `then`; what it printed and when. */
  function run(then: string): Promise<{ firstLineAfterMs: number | undefined; exitedAfterMs: number; stdout: string }> {
    const script = `
      const { KeywardLogger } = require(${JSON.stringify(require.resolve('./logger'))});
      const logger = KeywardLogger.create('test', 'info', { bufferBytes: 4096 });
      logger.info('Gateway call', { status: 200 });
      ${then}`;
    const started = Date.now();
    const child = spawn(process.execPath, ['-r', 'ts-node/register', '-e', script], {
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_TRANSPILER: 'ts-node/transpilers/swc' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let stdout = '';
    let firstLineAfterMs: number | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      firstLineAfterMs ??= Date.now() - started;
      stdout += String(chunk);
    });
    return new Promise((resolve) => child.on('close', () => resolve({ firstLineAfterMs, exitedAfterMs: Date.now() - started, stdout })));
  }

  it('writes a lone line within the flush period, while the process runs on', async () => {
    const result = await run('setTimeout(() => undefined, 2000);');
    expect(result.stdout).toContain('"msg":"Gateway call"');
    expect(result.firstLineAfterMs).toBeLessThan(result.exitedAfterMs - 1000);
  }, 30_000);

  it('loses no line when the process crashes', async () => {
    const result = await run("setTimeout(() => { throw new Error('crash'); }, 10);");
    expect(result.stdout).toContain('"msg":"Gateway call"');
  }, 30_000);
});
