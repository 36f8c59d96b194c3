import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './index';
import { PUBLISHED_SECRETS } from './published-secrets';

const ROOT = join(__dirname, '../../..');
const b64 = (n: number) => randomBytes(n).toString('base64');
/** A production environment with fresh secrets: accepted as it is. */
const production = (): Record<string, string> => ({
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://keyward@db.internal:5432/keyward',
  AMQP_URL: 'amqps://keyward-intake@mq.internal',
  PLEO_API_BASE_URL: 'https://external.pleo.io',
  KEYWARD_PUBLIC_URL: 'https://keyward.example.com',
  PLEO_REQUIRED_SCOPES: 'accounts:read',
  KEYWARD_SECRETS_BACKEND: 'local',
  KEYWARD_MASTER_KEY: `prod:${b64(32)}`,
  KEYWARD_FINGERPRINT_PEPPER: b64(32),
  KEYWARD_SERVICE_TOKENS: `ops=${randomBytes(24).toString('hex')}`,
});

function refusal(env: Record<string, string>): string | undefined {
  try {
    loadConfig('intake', env);
    return undefined;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.message;
  }
}

const SECRET_VARIABLES = ['KEYWARD_SERVICE_TOKENS', 'KEYWARD_FINGERPRINT_PEPPER', 'KEYWARD_MASTER_KEY', 'KEYWARD_MASTER_KEYRING', 'KEYWARD_ALERT_WEBHOOK_SECRET', 'AMQP_URL', 'DATABASE_URL'];

/**
 * Every literal assignment of a secret variable in a tracked file: `NAME: value`, `NAME=value`,
 * quoted or not (quoted only in TypeScript, where an unquoted value is an expression). A value
 * counts when development accepts it — placeholders such as `name=sha256:…` do not.
 */
function publishedAssignments(): { file: string; name: string; value: string }[] {
  const files = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f && !f.endsWith('package-lock.json') && /\.(ya?ml|json|md|ts|sh|env|txt)$|(^|\/)(Dockerfile|\.env[^/]*)$/.test(f));
  const pattern = new RegExp(`\\b(${SECRET_VARIABLES.join('|')})\\b["']?\\s*[:=]\\s*(?:'([^'\\n]*)'|"([^"\\n]*)"|([^\\s'"\`,}#|)]+))`, 'g');
  const found: { file: string; name: string; value: string }[] = [];
  for (const file of files) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const m of text.matchAll(pattern)) {
      const [, name, single, double, bare] = m;
      const value = single ?? double ?? (file.endsWith('.ts') ? undefined : bare);
      if (!value || value.includes('${') || value.includes('<')) continue;
      if ((name === 'AMQP_URL' || name === 'DATABASE_URL') && !/^[a-z]+:\/\/[^/@:]+:[^/@]+@/.test(value)) continue; // no password in it
      const env: Record<string, string> = name === 'KEYWARD_ALERT_WEBHOOK_SECRET' ? { [name]: value, KEYWARD_ALERT_WEBHOOK_URL: 'https://hooks.example' } : { [name]: value };
      if (refusal({ NODE_ENV: 'development', ...env }) !== undefined) continue;
      found.push({ file, name, value });
    }
  }
  return found;
}

describe('production refuses secrets published in the repository', () => {
  it('starts with fresh secrets', () => {
    expect(refusal(production())).toBeUndefined();
  });

  it.each([
    ['KEYWARD_SERVICE_TOKENS', 'dev=dev-service-token'],
    ['KEYWARD_SERVICE_TOKENS', `ops=${randomBytes(24).toString('hex')},dev=dev-service-token`],
    // The same token written as its hash is the same published token.
    ['KEYWARD_SERVICE_TOKENS', `dev=sha256:${createHash('sha256').update('dev-service-token').digest('hex')}`],
    ['KEYWARD_MASTER_KEY', `dev:${PUBLISHED_SECRETS.masterKeys[0]}`],
    // Another id does not make the published key secret.
    ['KEYWARD_MASTER_KEY', `prod-2026:${PUBLISHED_SECRETS.masterKeys[0]}`],
    ['KEYWARD_MASTER_KEYRING', `old:${PUBLISHED_SECRETS.masterKeys[0]}`],
    ['KEYWARD_FINGERPRINT_PEPPER', PUBLISHED_SECRETS.fingerprintPeppers[0]],
    ['AMQP_URL', 'amqps://guest:guest@mq.internal'],
    ['DATABASE_URL', 'postgres://keyward:guest@db.internal/keyward'],
  ])('refuses %s=%s by name, without echoing it', (name, value) => {
    const message = refusal({ ...production(), [name]: value });
    expect(message).toContain(`${name} holds`);
    expect(message).not.toContain(value);
    expect(message).not.toContain('dev-service-token');
  });

  it('still accepts the published values outside production (compose, tests)', () => {
    expect(refusal({ NODE_ENV: 'development', KEYWARD_SERVICE_TOKENS: 'dev=dev-service-token', KEYWARD_MASTER_KEY: `dev:${PUBLISHED_SECRETS.masterKeys[0]}` })).toBeUndefined();
  });

  it('knows every secret value written in the repository: each one is refused in production', () => {
    const assignments = publishedAssignments();
    // The scan must see compose's values, or it scans nothing.
    expect(assignments.filter((a) => a.file === 'docker-compose.yml').map((a) => a.name)).toEqual(
      expect.arrayContaining(['KEYWARD_SERVICE_TOKENS', 'KEYWARD_FINGERPRINT_PEPPER', 'KEYWARD_MASTER_KEY', 'AMQP_URL']),
    );
    const missed = assignments.filter(({ name, value }) => {
      const env = { ...production(), [name]: value, ...(name === 'KEYWARD_ALERT_WEBHOOK_SECRET' ? { KEYWARD_ALERT_WEBHOOK_URL: 'https://hooks.example' } : {}) };
      return !refusal(env)?.includes(`${name} holds`);
    });
    // Add each to PUBLISHED_SECRETS (libs/config/src/published-secrets.ts).
    expect(missed.map(({ file, name }) => `${file}: ${name}`)).toEqual([]);
  });
});
