import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './index';

describe('loadConfig', () => {
  it('runs on development defaults and lists them for the start-up announcement', () => {
    const config = loadConfig('intake', {});
    expect(config.port).toBe(3000);
    expect(config.database.url).toBe('postgres://postgres@127.0.0.1:5432/keyward');
    expect(config.secrets.backend).toBe('local');
    expect(config.auth.serviceTokens.map((t) => t.name)).toEqual(['dev']);
    expect(config.devDefaultsUsed).toEqual(expect.arrayContaining(['KEYWARD_SERVICE_TOKENS=dev=dev-service-token', 'KEYWARD_SECRETS_BACKEND=local']));
  });

  it('refuses development defaults in production and names every variable', () => {
    expect.assertions(5);
    try {
      loadConfig('intake', { NODE_ENV: 'production' });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message).toContain('DATABASE_URL is required when NODE_ENV=production');
      expect(message).toContain('KEYWARD_SERVICE_TOKENS is required');
      expect(message).toContain('KEYWARD_SECRETS_BACKEND is required');
    }
    // Workers neither authenticate callers nor fingerprint keys: they are not asked for those secrets.
    try {
      loadConfig('validator', { NODE_ENV: 'production' });
    } catch (error) {
      expect((error as Error).message).not.toMatch(/KEYWARD_SERVICE_TOKENS|KEYWARD_FINGERPRINT_PEPPER/);
    }
  });

  it('names the variable and what is wrong, without echoing a URL that may hold a password', () => {
    expect(() => loadConfig('monitor', { PORT: 'eighty', DATABASE_URL: 'not a url with secretpw' })).toThrow(
      /DATABASE_URL is not a valid URL[\s\S]*PORT must be a whole number from 0 to 65535, got "eighty"/,
    );
    expect(() => loadConfig('monitor', { DATABASE_URL: 'not a url with secretpw' })).toThrow(ConfigError);
    try {
      loadConfig('monitor', { DATABASE_URL: 'not a url with secretpw' });
    } catch (error) {
      expect((error as Error).message).not.toContain('secretpw');
    }
  });

  it('refuses one master key id for two different keys, naming both variables', () => {
    const [a, b] = [Buffer.alloc(32, 1).toString('base64'), Buffer.alloc(32, 2).toString('base64')];
    expect(() => loadConfig('rotation', { KEYWARD_MASTER_KEY: `prod:${a}`, KEYWARD_MASTER_KEYRING: `prod:${b}` })).toThrow(
      /KEYWARD_MASTER_KEY and KEYWARD_MASTER_KEYRING name two different keys with the id "prod"/,
    );
    expect(loadConfig('rotation', { KEYWARD_MASTER_KEY: `new:${a}`, KEYWARD_MASTER_KEYRING: `prod:${b}` }).secrets.keyring.map((k) => k.id)).toEqual(['prod']);
  });

  it('accepts hashed service tokens and keeps no plain token', () => {
    const hex = 'a'.repeat(64);
    const config = loadConfig('intake', { KEYWARD_SERVICE_TOKENS: `billing=sha256:${hex},erp=erp-backend-token-123` });
    expect(config.auth.serviceTokens).toHaveLength(2);
    expect(config.auth.serviceTokens[0]).toEqual({ name: 'billing', sha256: Buffer.from(hex, 'hex') });
    expect(JSON.stringify(config.auth)).not.toContain('erp-backend-token-123');
  });

  it("shares Secrets Manager's write quota as KEYWARD_SECRETS_WRITE_RATE: 40 a second unless set, never above AWS's 50", () => {
    expect(loadConfig('rotation', {}).secrets.writeRatePerSecond).toBe(40);
    expect(loadConfig('rotation', { KEYWARD_SECRETS_WRITE_RATE: '25' }).secrets.writeRatePerSecond).toBe(25);
    for (const wrong of ['51', '0', '12.5', 'fast']) {
      expect(() => loadConfig('intake', { KEYWARD_SECRETS_WRITE_RATE: wrong })).toThrow(
        new RegExp(
          `KEYWARD_SECRETS_WRITE_RATE must be a whole number of Secrets Manager calls per second from 1 to 50 \\(AWS allows 50 writes per second per account and Region, shared by every replica; .*\\), got "${wrong.replace('.', '\\.')}"`,
        ),
      );
    }
  });

  it('keeps up to 10,000 keys cached a process unless KEYWARD_SECRET_CACHE_MAX_KEYS says otherwise', () => {
    expect(loadConfig('gateway', {}).secrets.cacheMaxKeys).toBe(10_000);
    expect(loadConfig('gateway', { KEYWARD_SECRET_CACHE_MAX_KEYS: '60000' }).secrets.cacheMaxKeys).toBe(60_000);
    for (const wrong of ['0', '1000001', 'many']) expect(() => loadConfig('gateway', { KEYWARD_SECRET_CACHE_MAX_KEYS: wrong })).toThrow(/KEYWARD_SECRET_CACHE_MAX_KEYS/);
  });

  it('holds 500 unacknowledged deliveries in the monitor, whose batches are as large as what it holds, 20 elsewhere, unless set', () => {
    expect(loadConfig('monitor', {}).amqp.prefetch).toBe(1000);
    for (const service of ['validator', 'rotation', 'intake'] as const) expect(loadConfig(service, {}).amqp.prefetch).toBe(20);
    expect(loadConfig('monitor', { KEYWARD_AMQP_PREFETCH: '50' }).amqp.prefetch).toBe(50);
    expect(() => loadConfig('monitor', { KEYWARD_AMQP_PREFETCH: '1001' })).toThrow(/KEYWARD_AMQP_PREFETCH/);
  });

  it('checks the master key length', () => {
    expect(() => loadConfig('rotation', { KEYWARD_MASTER_KEY: Buffer.alloc(16).toString('base64') })).toThrow(/KEYWARD_MASTER_KEY must hold 32 bytes/);
    const key = Buffer.alloc(32, 7).toString('base64');
    expect(loadConfig('rotation', { KEYWARD_MASTER_KEY: `2026-11:${key}` }).secrets.masterKey?.id).toBe('2026-11');
  });
});

describe('configuration documentation', () => {
  it('the README configuration table names every variable the services read', () => {
    const source = readFileSync(join(__dirname, 'keyward-config.ts'), 'utf8');
    const readme = readFileSync(join(__dirname, '../../../README.md'), 'utf8');
    const variables = [...new Set([...source.matchAll(/'([A-Z][A-Z0-9_]{3,})'/g)].map((m) => m[1]))];
    expect(variables.length).toBeGreaterThan(30);
    expect(variables.filter((name) => !readme.includes(`\`${name}\``))).toEqual([]);
  });

  describe('connect page and webhook signing settings', () => {
    const whsec = (fill: number) => `whsec_${Buffer.alloc(32, fill).toString('base64')}`;

    it('defaults to no return URLs and no framing, and normalises a bare origin so its host cannot be extended', () => {
      const config = loadConfig('intake', { KEYWARD_CONNECT_RETURN_URLS: 'https://app.example.com, https://partner.example.org/pleo/' });
      expect(config.connect.returnUrlPrefixes).toEqual(['https://app.example.com/', 'https://partner.example.org/pleo/']);
      expect(loadConfig('intake', {}).connect).toEqual({ publicUrl: 'http://127.0.0.1:3000', returnUrlPrefixes: [], frameAncestors: "'none'" });
      expect(loadConfig('intake', { KEYWARD_CONNECT_FRAME_ANCESTORS: "'self' https://app.example.com" }).connect.frameAncestors).toBe("'self' https://app.example.com");
    });

    it.each<[Record<string, string>, RegExp]>([
      [{ KEYWARD_CONNECT_RETURN_URLS: 'app.example.com' }, /KEYWARD_CONNECT_RETURN_URLS entry "app.example.com" is not an absolute URL/],
      [{ KEYWARD_CONNECT_RETURN_URLS: 'https://app.example.com/?x=1' }, /must not carry a query/],
      [{ KEYWARD_CONNECT_FRAME_ANCESTORS: "'none' https://app.example.com" }, /KEYWARD_CONNECT_FRAME_ANCESTORS must be/],
      [{ KEYWARD_CONNECT_FRAME_ANCESTORS: '*' }, /KEYWARD_CONNECT_FRAME_ANCESTORS must be/],
      [{ KEYWARD_PUBLIC_URL: 'keyward.example.com' }, /KEYWARD_PUBLIC_URL is not a valid URL/],
      [{ KEYWARD_ALERT_WEBHOOK_SECRET: 'not-a-standard-secret' }, /KEYWARD_ALERT_WEBHOOK_SECRET must be a Standard Webhooks secret/],
      [{ KEYWARD_ALERT_WEBHOOK_SECRET: whsec(1), KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET: whsec(2) }, /KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET_UNTIL must be an ISO 8601/],
      [{ KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET_UNTIL: '2026-12-01T00:00:00Z' }, /set without KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET/],
    ])('refuses %j', (env, message) => {
      expect(() => loadConfig('intake', env)).toThrow(message);
    });

    it('refuses http in production for the public URL and return URLs, and asks only intake for the public URL', () => {
      const production = { NODE_ENV: 'production', KEYWARD_PUBLIC_URL: 'http://keyward.example.com', KEYWARD_CONNECT_RETURN_URLS: 'http://app.example.com/' };
      expect(() => loadConfig('intake', production)).toThrow(/KEYWARD_PUBLIC_URL must use https:[\s\S]*KEYWARD_CONNECT_RETURN_URLS entry "http:\/\/app.example.com\/" must use https:/);
      expect(() => loadConfig('validator', { NODE_ENV: 'production' })).not.toThrow(/KEYWARD_PUBLIC_URL/);
    });

    it('signs with the previous secret until its window ends', () => {
      const until = '2026-12-01T00:00:00.000Z';
      const config = loadConfig('monitor', { KEYWARD_ALERT_WEBHOOK_SECRET: whsec(1), KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET: whsec(2), KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET_UNTIL: until });
      expect(config.monitor.alertWebhookSecrets).toEqual([{ secret: whsec(1) }, { secret: whsec(2), until: new Date(until) }]);
    });
  });
});
