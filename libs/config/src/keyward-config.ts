import { createHash } from 'node:crypto';
import { ConfigError, Env, EnvReader } from './env-reader';
import { hasPublishedPassword, isPublishedMasterKey, isPublishedPepper, isPublishedServiceToken, isPublishedWebhookSecret } from './published-secrets';

export const SERVICE_NAMES = ['intake', 'validator', 'rotation', 'monitor', 'gateway', 'pleo-sandbox', 'tool'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** The name a service's Postgres pool gives its connections (`application_name`): what NOTIFY keyward_outbox names, and what pg_stat_activity shows. */
export function poolApplicationName(service: ServiceName): string {
  return `keyward-${service}`;
}

export const DEFAULT_PORTS: Record<ServiceName, number> = {
  intake: 3000,
  validator: 3001,
  rotation: 3002,
  monitor: 3003,
  gateway: 3004,
  'pleo-sandbox': 4010,
  tool: 0,
};

/**
 * Unacknowledged deliveries a worker holds unless `KEYWARD_AMQP_PREFETCH` says otherwise. The
 * monitor decides a batch of auth failures in one transaction (ADR 0035), so what it holds is
 * what it can batch: at 20 its batches are at most 20 and a burst goes ~5× slower (ADR 0049);
 * 1,000 fills its two batches of 500 (ADR 0052).
 * The validator's deliveries each hold a Pleo call, so its 20 bound those calls per replica.
 */
export const DEFAULT_PREFETCH: Record<ServiceName, number> = {
  intake: 20,
  validator: 20,
  rotation: 20,
  monitor: 1000,
  gateway: 20,
  'pleo-sandbox': 20,
  tool: 20,
};

export interface MasterKey {
  id: string;
  key: Buffer;
}

/** A Standard Webhooks signing secret (`whsec_<base64>`), optionally only until a moment (rotation window). */
export interface WebhookSigningSecret {
  secret: string;
  until?: Date;
}

export interface ServiceToken {
  name: string;
  sha256: Buffer;
}

export interface KeywardConfig {
  service: ServiceName;
  nodeEnv: 'development' | 'test' | 'production';
  port: number;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  database: { url: string; poolSize: number };
  amqp: { url: string; prefix: string; prefetch: number; inboxRetentionDays: number };
  pleo: {
    baseUrl: string;
    requiredScopes: string[];
    allowOrganizationKeys: boolean;
    timeoutMs: number;
    connectTimeoutMs: number;
    /** Circuit breaker per Pleo environment: how long it stays open, what share of failures opens it. */
    breakerResetMs: number;
    breakerErrorPercent: number;
  };
  secrets: {
    backend: 'local' | 'aws';
    /** Undefined only in development/test, where the local store generates one into .keyward/. */
    masterKey?: MasterKey;
    /** Retired master keys still able to unwrap old rows (until re-wrapped). */
    keyring: MasterKey[];
    awsRegion: string;
    awsEndpoint?: string;
    namePrefix: string;
    envName: string;
    kmsKeyId?: string;
    maxAttempts: number;
    /**
     * Secrets Manager calls per second for all replicas of every service together, in each of
     * its 50-per-second quotas that keyward calls (writes: PutSecretValue with
     * UpdateSecretVersionStage; CreateSecret; DeleteSecret; RestoreSecret; ListSecretVersionIds).
     */
    writeRatePerSecond: number;
    cacheTtlMs: number;
    /** Keys a process keeps cached at most (each ~0.75 KiB of heap); past it the oldest is read again. */
    cacheMaxKeys: number;
    recoveryWindowDays: number;
    fingerprintPepper: Buffer;
  };
  auth: { serviceTokens: ServiceToken[]; installSessionTtlSeconds: number };
  intake: {
    keyMinLength: number;
    keyMaxLength: number;
    submissionsPerTenantPerHour: number;
    submissionsPerCallerPerMinute: number;
    connectionChecksPerTenantPerHour: number;
    /** How often a `Prefer: wait` request reads its submission again though nothing woke it (a lost notification). */
    preferWaitRecheckMs: number;
  };
  /** The hosted connect page: where it is reachable, where it may send the customer back, who may frame it. */
  connect: {
    /** Origin (and optional path prefix) under which intake is reachable from a browser, without a trailing slash. */
    publicUrl: string;
    /** A returnUrl must start with one of these. Empty: no returnUrl is accepted. */
    returnUrlPrefixes: string[];
    /** The CSP frame-ancestors sources of the page; `'none'` unless an integrator embeds it. */
    frameAncestors: string;
  };
  validation: { retryForHours: number };
  /** The reconciler's sweeps for stuck work (ADR 0014). */
  reconciler: { intervalSeconds: number; stuckAfterSeconds: number; submissionStuckAfterSeconds: number; maxRedrives: number };
  monitor: {
    failureThreshold: number;
    failureWindowSeconds: number;
    probeIntervalHours: number;
    probeShareOfRateLimit: number;
    pleoRateLimitPerMinute: number;
    providerIncidentShare: number;
    providerIncidentMinTenants: number;
    authFailureRetentionDays: number;
    alertWebhookUrl?: string;
    /** Standard Webhooks signing secrets: the current one first, then a previous one during its rotation window. */
    alertWebhookSecrets: WebhookSigningSecret[];
  };
  gateway: {
    /** Calls per credential per minute across all gateway replicas together (Pleo allows ~600). */
    ratePerMinute: number;
    maxBodyBytes: number;
    /** How long a replica trusts a tenant's connection row; revocations are checked on every call regardless. */
    stateCacheMs: number;
  };
  /** The Pleo sandbox's per-credential limit, as Pleo's (0 = none). */
  sandbox: { ratePerMinute: number };
  /** `NAME=value` for every development default in use; announced at start-up. */
  devDefaultsUsed: string[];
}

const DEV_SERVICE_TOKENS = 'dev=dev-service-token';
const DEV_PEPPER = 'keyward-development-fingerprint-pepper';

export function loadConfig(service: ServiceName, env: Env = process.env): KeywardConfig {
  const nodeEnv = new EnvReader(env, false).oneOf('NODE_ENV', ['development', 'test', 'production'] as const, 'development');
  const production = nodeEnv === 'production';
  const read = new EnvReader(env, production);

  const databaseUrl = read.url('DATABASE_URL', read.devDefault('DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/keyward', 'postgres://postgres@127.0.0.1:5432/keyward'), [
    'postgres:',
    'postgresql:',
  ]);
  const amqpUrl = read.url('AMQP_URL', read.devDefault('AMQP_URL', 'amqp://guest:guest@localhost:5672', 'amqp://guest:guest@localhost:5672'), ['amqp:', 'amqps:']);
  const pleoBaseUrl = read.url(
    'PLEO_API_BASE_URL',
    read.devDefault('PLEO_API_BASE_URL', 'http://127.0.0.1:4010', 'http://127.0.0.1:4010 (the Pleo sandbox)'),
    production ? ['https:'] : ['https:', 'http:'],
  );

  const backend = read.oneOf('KEYWARD_SECRETS_BACKEND', ['local', 'aws'] as const, 'local');
  if (production && read.raw('KEYWARD_SECRETS_BACKEND') === undefined) {
    read.fail('KEYWARD_SECRETS_BACKEND is required when NODE_ENV=production (local or aws)');
  } else if (!production && read.raw('KEYWARD_SECRETS_BACKEND') === undefined) {
    read.defaultsUsed.push('KEYWARD_SECRETS_BACKEND=local');
  }

  const masterKey = parseMasterKey(read, 'KEYWARD_MASTER_KEY', read.optional('KEYWARD_MASTER_KEY'));
  if (!masterKey && production && backend === 'local') {
    read.fail('KEYWARD_MASTER_KEY is required when NODE_ENV=production with the local secret backend (32 bytes, base64)');
  }
  const keyring = (read.optional('KEYWARD_MASTER_KEYRING') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => parseMasterKey(read, 'KEYWARD_MASTER_KEYRING', entry))
    .filter((k): k is MasterKey => k !== undefined);

  for (const [i, entry] of keyring.entries()) {
    const clash = [...(masterKey ? [masterKey] : []), ...keyring.slice(0, i)].find((k) => k.id === entry.id && !k.key.equals(entry.key));
    if (clash) read.fail(`KEYWARD_MASTER_KEY and KEYWARD_MASTER_KEYRING name two different keys with the id "${entry.id}"; give each key its own id`);
  }

  // Only intake fingerprints keys; intake and the gateway authenticate callers; workers need neither secret.
  const needsCallerSecrets = service === 'intake' || service === 'tool';
  const needsServiceTokens = needsCallerSecrets || service === 'gateway';
  const pepperText = needsCallerSecrets ? read.devDefault('KEYWARD_FINGERPRINT_PEPPER', DEV_PEPPER, 'a fixed development pepper') : (read.raw('KEYWARD_FINGERPRINT_PEPPER') ?? DEV_PEPPER);
  const fingerprintPepper = read.raw('KEYWARD_FINGERPRINT_PEPPER') ? decodeSecretBytes(read, 'KEYWARD_FINGERPRINT_PEPPER', pepperText, 32) : Buffer.from(pepperText);

  const tokensText = needsServiceTokens ? read.devDefault('KEYWARD_SERVICE_TOKENS', DEV_SERVICE_TOKENS, DEV_SERVICE_TOKENS) : read.raw('KEYWARD_SERVICE_TOKENS');
  const serviceTokens = tokensText === undefined ? [] : parseServiceTokens(read, tokensText);

  const cacheTtlMs = read.int('KEYWARD_SECRET_CACHE_TTL_MS', 30_000, 0, 60_000);
  const webhookUrl = read.optional('KEYWARD_ALERT_WEBHOOK_URL');
  if (webhookUrl) read.url('KEYWARD_ALERT_WEBHOOK_URL', webhookUrl, production ? ['https:'] : ['https:', 'http:']);
  const webhookSecrets = parseWebhookSecrets(read);
  if (webhookUrl && webhookSecrets.length === 0 && production) {
    read.fail('KEYWARD_ALERT_WEBHOOK_SECRET is required when KEYWARD_ALERT_WEBHOOK_URL is set in production (the webhook is signed with it)');
  }
  // Only intake serves the connect page; the workers neither need nor check its address.
  const publicUrl =
    service === 'intake'
      ? read.url('KEYWARD_PUBLIC_URL', read.devDefault('KEYWARD_PUBLIC_URL', 'http://127.0.0.1:3000', 'http://127.0.0.1:3000'), production ? ['https:'] : ['https:', 'http:'])
      : (read.raw('KEYWARD_PUBLIC_URL') ?? 'http://127.0.0.1:3000');
  const returnUrlPrefixes = parseReturnUrlPrefixes(read, production);
  const frameAncestors = parseFrameAncestors(read);

  const config: KeywardConfig = {
    service,
    nodeEnv,
    port: read.int('PORT', DEFAULT_PORTS[service], 0, 65535),
    logLevel: read.oneOf('LOG_LEVEL', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const, 'info'),
    database: { url: databaseUrl, poolSize: read.int('KEYWARD_DB_POOL_SIZE', 10, 1, 200) },
    amqp: {
      url: amqpUrl,
      prefix: validatePrefix(read, read.string('KEYWARD_AMQP_PREFIX', 'keyward')),
      prefetch: read.int('KEYWARD_AMQP_PREFETCH', DEFAULT_PREFETCH[service], 1, 1000),
      inboxRetentionDays: read.int('KEYWARD_INBOX_RETENTION_DAYS', 14, 1, 3650),
    },
    pleo: {
      baseUrl: pleoBaseUrl.replace(/\/+$/, ''),
      requiredScopes: read.devDefault('PLEO_REQUIRED_SCOPES', 'accounts:read export-jobs:write', '"accounts:read export-jobs:write"').split(/\s+/).filter(Boolean),
      allowOrganizationKeys: read.bool('PLEO_ALLOW_ORGANIZATION_KEYS', false),
      timeoutMs: read.int('PLEO_TIMEOUT_MS', 5_000, 100, 60_000),
      connectTimeoutMs: read.int('PLEO_CONNECT_TIMEOUT_MS', 2_000, 50, 30_000),
      breakerResetMs: read.int('PLEO_BREAKER_RESET_MS', 30_000, 100, 600_000),
      breakerErrorPercent: read.int('PLEO_BREAKER_ERROR_PERCENT', 50, 1, 100),
    },
    secrets: {
      backend,
      masterKey,
      keyring,
      awsRegion: read.string('AWS_REGION', 'eu-west-1'),
      awsEndpoint: read.optional('AWS_ENDPOINT_URL_SECRETS_MANAGER'),
      namePrefix: read.string('KEYWARD_SECRETS_PREFIX', 'keyward'),
      envName: read.string('KEYWARD_ENV', production ? 'prod' : 'dev'),
      kmsKeyId: read.optional('KEYWARD_SECRETS_KMS_KEY_ID'),
      maxAttempts: read.int('KEYWARD_SECRETS_MAX_ATTEMPTS', 4, 1, 10),
      writeRatePerSecond: parseSecretsWriteRate(read),
      cacheTtlMs,
      cacheMaxKeys: read.int('KEYWARD_SECRET_CACHE_MAX_KEYS', 10_000, 1, 1_000_000),
      recoveryWindowDays: read.int('KEYWARD_SECRET_RECOVERY_WINDOW_DAYS', 30, 7, 30),
      fingerprintPepper,
    },
    auth: {
      serviceTokens,
      installSessionTtlSeconds: read.int('KEYWARD_INSTALL_SESSION_TTL_SECONDS', 900, 60, 3600),
    },
    intake: {
      keyMinLength: read.int('KEYWARD_KEY_MIN_LENGTH', 20, 8, 4096),
      keyMaxLength: read.int('KEYWARD_KEY_MAX_LENGTH', 512, 16, 8192),
      submissionsPerTenantPerHour: read.int('KEYWARD_SUBMISSIONS_PER_TENANT_PER_HOUR', 20, 1, 100_000),
      submissionsPerCallerPerMinute: read.int('KEYWARD_SUBMISSIONS_PER_CALLER_PER_MINUTE', 120, 1, 1_000_000),
      connectionChecksPerTenantPerHour: read.int('KEYWARD_CONNECTION_CHECKS_PER_TENANT_PER_HOUR', 12, 1, 10_000),
      preferWaitRecheckMs: read.int('KEYWARD_PREFER_WAIT_RECHECK_MS', 5_000, 100, 3_600_000),
    },
    connect: { publicUrl: publicUrl.replace(/\/+$/, ''), returnUrlPrefixes, frameAncestors },
    validation: { retryForHours: read.number('KEYWARD_VALIDATION_RETRY_HOURS', 24, 0.001, 24 * 14) },
    reconciler: {
      // 0 turns the sweeps off (not recommended: they are the second line behind retries and the outbox).
      intervalSeconds: read.int('KEYWARD_RECONCILE_INTERVAL_SECONDS', 60, 0, 86_400),
      stuckAfterSeconds: read.int('KEYWARD_RECONCILE_STUCK_AFTER_SECONDS', 300, 1, 7 * 86_400),
      submissionStuckAfterSeconds: read.int('KEYWARD_RECONCILE_SUBMISSION_STUCK_AFTER_SECONDS', 900, 1, 7 * 86_400),
      maxRedrives: read.int('KEYWARD_RECONCILE_MAX_REDRIVES', 3, 0, 100),
    },
    monitor: {
      failureThreshold: read.int('KEYWARD_AUTH_FAILURE_THRESHOLD', 3, 1, 1000),
      failureWindowSeconds: read.int('KEYWARD_AUTH_FAILURE_WINDOW_SECONDS', 300, 10, 86_400),
      probeIntervalHours: read.number('KEYWARD_PROBE_INTERVAL_HOURS', 24, 0.001, 24 * 30),
      probeShareOfRateLimit: read.number('KEYWARD_PROBE_SHARE_OF_RATE_LIMIT', 0.1, 0.001, 1),
      pleoRateLimitPerMinute: read.int('PLEO_RATE_LIMIT_PER_MINUTE', 600, 1, 1_000_000),
      providerIncidentShare: read.number('KEYWARD_PROVIDER_INCIDENT_SHARE', 0.3, 0.01, 1),
      providerIncidentMinTenants: read.int('KEYWARD_PROVIDER_INCIDENT_MIN_TENANTS', 5, 1, 1_000_000),
      authFailureRetentionDays: read.int('KEYWARD_AUTH_FAILURE_RETENTION_DAYS', 90, 1, 3650),
      alertWebhookUrl: webhookUrl,
      alertWebhookSecrets: webhookSecrets,
    },
    gateway: {
      ratePerMinute: read.int('KEYWARD_GATEWAY_RATE_PER_MINUTE', 540, 1, 1_000_000),
      maxBodyBytes: read.int('KEYWARD_GATEWAY_MAX_BODY_BYTES', 10 * 1024 * 1024, 1, 1024 * 1024 * 1024),
      stateCacheMs: read.int('KEYWARD_GATEWAY_STATE_CACHE_MS', 1_000, 0, 10_000),
    },
    sandbox: { ratePerMinute: read.int('PLEO_SANDBOX_RATE_PER_MINUTE', 600, 0, 1_000_000) },
    devDefaultsUsed: read.defaultsUsed,
  };

  // A submission waits up to the validator's slowest retry tier (10 minutes) between attempts.
  if (production && config.reconciler.submissionStuckAfterSeconds < 660) {
    read.fail("KEYWARD_RECONCILE_SUBMISSION_STUCK_AFTER_SECONDS must be at least 660 in production (longer than the validator's slowest retry, 600 s)");
  }
  if (production) refusePublishedSecrets(read, config);
  if (config.intake.keyMinLength > config.intake.keyMaxLength) {
    read.fail('KEYWARD_KEY_MIN_LENGTH must not be larger than KEYWARD_KEY_MAX_LENGTH');
  }
  if (read.problems.length > 0) throw new ConfigError(read.problems);
  return config;
}

/**
 * Production refuses every secret that is written in this repository (compose, examples,
 * fixtures), even when set explicitly: copying the development environment must not give
 * production a token or key that everyone can read. The value is never echoed.
 */
function refusePublishedSecrets(read: EnvReader, config: KeywardConfig): void {
  const refuse = (name: string, what: string) => read.fail(`${name} holds ${what} published in the keyward repository; production refuses it (generate a new secret)`);
  const set = (name: string) => read.raw(name) !== undefined;
  if (set('KEYWARD_SERVICE_TOKENS')) {
    for (const token of config.auth.serviceTokens) if (isPublishedServiceToken(token.sha256)) refuse('KEYWARD_SERVICE_TOKENS', `the token of "${token.name}", a value`);
  }
  if (set('KEYWARD_FINGERPRINT_PEPPER') && isPublishedPepper(config.secrets.fingerprintPepper)) refuse('KEYWARD_FINGERPRINT_PEPPER', 'a value');
  if (config.secrets.masterKey && isPublishedMasterKey(config.secrets.masterKey.key)) refuse('KEYWARD_MASTER_KEY', 'a key');
  for (const key of config.secrets.keyring) if (isPublishedMasterKey(key.key)) refuse('KEYWARD_MASTER_KEYRING', `the key "${key.id}", a key`);
  for (const secret of config.monitor.alertWebhookSecrets)
    if (isPublishedWebhookSecret(secret.secret)) refuse(secret.until ? 'KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET' : 'KEYWARD_ALERT_WEBHOOK_SECRET', 'a value');
  if (hasPublishedPassword(config.amqp.url)) refuse('AMQP_URL', 'a password');
  if (hasPublishedPassword(config.database.url)) refuse('DATABASE_URL', 'a password');
}

/**
 * `KEYWARD_SECRETS_WRITE_RATE`: a whole number of calls per second, at most Secrets Manager's
 * quota of 50 per account and Region (not adjustable). Below it, so that calls reaching AWS a
 * little late still fit (ADR 0033).
 */
export const SECRETS_MANAGER_WRITE_QUOTA_PER_SECOND = 50;

function parseSecretsWriteRate(read: EnvReader): number {
  const text = read.raw('KEYWARD_SECRETS_WRITE_RATE');
  if (text === undefined) return 40;
  const rate = Number(text);
  if (!Number.isInteger(rate) || rate < 1 || rate > SECRETS_MANAGER_WRITE_QUOTA_PER_SECOND) {
    read.fail(
      `KEYWARD_SECRETS_WRITE_RATE must be a whole number of Secrets Manager calls per second from 1 to ${SECRETS_MANAGER_WRITE_QUOTA_PER_SECOND} ` +
        `(AWS allows ${SECRETS_MANAGER_WRITE_QUOTA_PER_SECOND} writes per second per account and Region, shared by every replica; the default 40 leaves room), got "${text}"`,
    );
    return 40;
  }
  return rate;
}

function validatePrefix(read: EnvReader, prefix: string): string {
  if (!/^[a-z][a-z0-9_-]{0,40}$/.test(prefix)) {
    read.fail(`KEYWARD_AMQP_PREFIX must be lower-case letters, digits, "-" or "_" (up to 41), got "${prefix}"`);
  }
  return prefix;
}

function decodeSecretBytes(read: EnvReader, name: string, value: string, minBytes: number): Buffer {
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length < minBytes || bytes.toString('base64').replace(/=+$/, '') !== value.replace(/=+$/, '')) {
    read.fail(`${name} must be at least ${minBytes} bytes, base64-encoded`);
  }
  return bytes;
}

/** `base64` or `id:base64`; a key without an id gets one derived from its hash. */
function parseMasterKey(read: EnvReader, name: string, value: string | undefined): MasterKey | undefined {
  if (value === undefined) return undefined;
  const colon = value.indexOf(':');
  const id = colon > 0 ? value.slice(0, colon) : undefined;
  const encoded = colon > 0 ? value.slice(colon + 1) : value;
  const key = Buffer.from(encoded, 'base64');
  if (key.length !== 32) {
    read.fail(`${name} must hold 32 bytes encoded as base64 (optionally "id:base64"); got ${key.length} bytes`);
    return undefined;
  }
  if (id !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(id)) {
    read.fail(`${name} key id must be letters, digits, ".", "_" or "-"`);
    return undefined;
  }
  return { id: id ?? `mk-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`, key };
}

function parseServiceTokens(read: EnvReader, text: string): ServiceToken[] {
  const tokens: ServiceToken[] = [];
  for (const entry of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = entry.indexOf('=');
    const name = eq > 0 ? entry.slice(0, eq) : '';
    const value = eq > 0 ? entry.slice(eq + 1) : '';
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name) || value.length === 0) {
      read.fail('KEYWARD_SERVICE_TOKENS entries must look like name=token or name=sha256:<hex>');
      continue;
    }
    if (value.startsWith('sha256:')) {
      const hex = value.slice('sha256:'.length);
      if (!/^[0-9a-f]{64}$/i.test(hex)) {
        read.fail(`KEYWARD_SERVICE_TOKENS entry "${name}" has a sha256 that is not 64 hex characters`);
        continue;
      }
      tokens.push({ name, sha256: Buffer.from(hex, 'hex') });
    } else {
      if (value.length < 16) read.fail(`KEYWARD_SERVICE_TOKENS entry "${name}" is shorter than 16 characters`);
      tokens.push({ name, sha256: createHash('sha256').update(value, 'utf8').digest() });
    }
  }
  if (tokens.length === 0) read.fail('KEYWARD_SERVICE_TOKENS must name at least one service token');
  return tokens;
}

/**
 * `KEYWARD_CONNECT_RETURN_URLS`: comma-separated URL prefixes. Each must be an absolute http(s)
 * URL ending in `/` or naming a path, so a prefix like `https://app.example` cannot be
 * extended into `https://app.example.evil.test`.
 */
function parseReturnUrlPrefixes(read: EnvReader, production: boolean): string[] {
  const text = read.optional('KEYWARD_CONNECT_RETURN_URLS');
  if (!text) return [];
  const prefixes: string[] = [];
  for (const entry of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    let parsed: URL;
    try {
      parsed = new URL(entry);
    } catch {
      read.fail(`KEYWARD_CONNECT_RETURN_URLS entry "${entry}" is not an absolute URL`);
      continue;
    }
    if (!(production ? ['https:'] : ['https:', 'http:']).includes(parsed.protocol)) {
      read.fail(`KEYWARD_CONNECT_RETURN_URLS entry "${entry}" must use ${production ? 'https:' : 'https: or http:'}`);
      continue;
    }
    if (parsed.search || parsed.hash || parsed.username || parsed.password) {
      read.fail(`KEYWARD_CONNECT_RETURN_URLS entry "${entry}" must not carry a query, fragment or credentials`);
      continue;
    }
    // new URL() adds the "/" after a bare origin, which is what keeps the host from being extended.
    prefixes.push(entry === parsed.origin ? `${parsed.origin}/` : entry);
  }
  return prefixes;
}

/** `'none'` (default), `'self'`, or space-separated https origins (http allowed outside production). */
function parseFrameAncestors(read: EnvReader): string {
  const text = read.optional('KEYWARD_CONNECT_FRAME_ANCESTORS');
  if (!text) return "'none'";
  const sources = text.split(/[\s,]+/).filter(Boolean);
  const ok = sources.every((s) => s === "'none'" || s === "'self'" || /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/.test(s) || /^https:\/\/\*\.[A-Za-z0-9.-]+$/.test(s));
  if (!ok || (sources.includes("'none'") && sources.length > 1)) {
    read.fail(`KEYWARD_CONNECT_FRAME_ANCESTORS must be 'none', 'self' or space-separated origins like https://app.example.com`);
    return "'none'";
  }
  return sources.join(' ');
}

const WHSEC = /^whsec_[A-Za-z0-9+/]{32,}={0,2}$/;

/**
 * The alert webhook's Standard Webhooks secrets: the current `KEYWARD_ALERT_WEBHOOK_SECRET` and,
 * during a rotation, `KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET` until
 * `KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET_UNTIL`; every delivery is signed with each.
 */
function parseWebhookSecrets(read: EnvReader): WebhookSigningSecret[] {
  const secrets: WebhookSigningSecret[] = [];
  const current = read.optional('KEYWARD_ALERT_WEBHOOK_SECRET');
  const previous = read.optional('KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET');
  const untilText = read.optional('KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET_UNTIL');
  const check = (name: string, value: string) => {
    // Never quote the value: it is a secret.
    if (!WHSEC.test(value) || Buffer.from(value.slice(6), 'base64').length < 24) {
      read.fail(`${name} must be a Standard Webhooks secret: "whsec_" followed by at least 24 random bytes in base64`);
      return false;
    }
    return true;
  };
  if (current && check('KEYWARD_ALERT_WEBHOOK_SECRET', current)) secrets.push({ secret: current });
  if (previous) {
    if (!current) read.fail('KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET is set without KEYWARD_ALERT_WEBHOOK_SECRET');
    const until = untilText ? new Date(untilText) : undefined;
    if (!until || Number.isNaN(until.getTime())) {
      read.fail('KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET_UNTIL must be an ISO 8601 date and time when a previous secret is set (it ends the rotation window)');
    } else if (check('KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET', previous)) {
      secrets.push({ secret: previous, until });
    }
  } else if (untilText) {
    read.fail('KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET_UNTIL is set without KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET');
  }
  return secrets;
}
