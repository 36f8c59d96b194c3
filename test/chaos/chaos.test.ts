import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * `npm run chaos`, short profile, as part of `npm test`: the whole stack against a private broker
 * and Postgres, faults injected, and the suite's own verdict. It fails when the chaos run finds a
 * lost event, a duplicate effect, a leak, a tenant not as planned or a fault not recovered.
 */
const script = join(__dirname, '..', '..', 'dist', 'scripts', 'chaos', 'chaos.js');

interface Summary {
  profile: string;
  tenants: number;
  rows: { phase: string; lost: number; duplicates: number; leaks: number; afterCompromise: number; tenants: string; recovery: string; published: number; consumed: number }[];
  failedChecks: string[];
}

function runChaos(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('npm run chaos (short profile)', () => {
  it('loses no event, duplicates no effect, leaks no key and recovers from every fault', async () => {
    expect(existsSync(script)).toBe(true);
    const { code, output } = await runChaos();
    const line = output.split('\n').find((l) => l.startsWith('CHAOS-SUMMARY '));
    if (!line || code !== 0) throw new Error(`chaos run exited ${code}:\n${output.slice(-12_000)}`);
    const summary = JSON.parse(line.slice('CHAOS-SUMMARY '.length)) as Summary;
    expect(summary.failedChecks).toEqual([]);
    expect(summary.rows.map((r) => r.phase)).toEqual(
      expect.arrayContaining(['broker restart during delayed retries', 'broker gone', 'Postgres restart and terminated backends', 'SIGKILL with work in flight', 'SIGTERM while busy', 'races', 'TOTAL']),
    );
    const total = summary.rows.find((r) => r.phase === 'TOTAL')!;
    expect(total).toMatchObject({ lost: 0, duplicates: 0, leaks: 0, afterCompromise: 0 });
    const [ok, all] = total.tenants.split('/').map(Number);
    expect(all).toBeGreaterThan(60);
    expect(ok).toBe(all);
    expect(total.consumed).toBeGreaterThan(total.published / 2);
    expect(output).toMatch(/\| fault +\| published \| consumed \| retried \| parked \|/);
  }, 40 * 60_000);
});
