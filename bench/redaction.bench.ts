import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { KeywardLogger, SecretRegistry } from '@keyward/observability';
import { runBenchmark } from './bench-database';

/**
 * npm run bench:redaction
 * What a log line costs as the secret registry fills: every line passes through the registry's
 * scrub (ADR 18), and a service registers the key of every tenant it reads one for (the gateway,
 * the validator) for half an hour, up to 20,000. Two lines, each written through `KeywardLogger`
 * to a stream that drops them: the gateway's per-call line (eight short fields) and a warning
 * carrying an error with its stack (~1 KB of text). Baseline, same process: the same lines with
 * nothing registered. No database, no broker.
 */
const SIZES = [0, 10, 100, 1_000, 10_000, 20_000];

function logger(registry: SecretRegistry): KeywardLogger {
  const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
  return KeywardLogger.create('bench', 'info', { destination: discard, registry });
}

function key(): string {
  return `pleo_${randomBytes(24).toString('base64url')}`;
}

const callFields = {
  tenantId: `bench-tenant-${randomUUID()}`,
  credentialId: randomUUID(),
  method: 'GET',
  path: '/v1/expenses?limit=50&cursor=c2VlbiBiZWZvcmU',
  status: 200,
  upstreamMs: 41.7,
  addedMs: 0.8,
  correlationId: randomUUID(),
};
const failure = new Error(`Pleo answered 502 for tenant ${callFields.tenantId}: upstream connect error or disconnect/reset before headers`);

/** µs per line, over enough lines to take ~0.3 s. */
function perLine(write: () => void): number {
  for (let i = 0; i < 200; i++) write();
  let lines = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < 300e6) {
    for (let i = 0; i < 50; i++) write();
    lines += 50;
    elapsed = Number(process.hrtime.bigint() - start);
  }
  return elapsed / 1e3 / lines;
}

async function main(): Promise<void> {
  console.log('bench:redaction — one log line through KeywardLogger (redaction, pino, a stream that drops it), by the number of secrets registered');
  const rows: { size: number; call: number; error: number }[] = [];
  for (const size of SIZES) {
    const registry = new SecretRegistry(30 * 60_000, 20_000);
    for (let i = 0; i < size; i++) registry.register(key());
    const log = logger(registry);
    rows.push({
      size,
      call: perLine(() => log.info('Pleo call forwarded', callFields)),
      error: perLine(() => log.warn('Pleo call failed', { ...callFields, err: failure })),
    });
  }
  const [baseline] = rows;
  console.log(`baseline — nothing registered:  per-call line ${baseline.call.toFixed(1)} µs, error line with its stack ${baseline.error.toFixed(1)} µs`);
  for (const { size, call, error } of rows.slice(1)) {
    console.log(
      `${String(size).padStart(6)} registered:  per-call line ${call.toFixed(1).padStart(6)} µs (${(call / baseline.call).toFixed(2)}× the baseline), error line ${error.toFixed(1).padStart(7)} µs (${(error / baseline.error).toFixed(2)}×)`,
    );
  }
}

runBenchmark('redaction', main);
