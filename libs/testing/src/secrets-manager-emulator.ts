import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { evaluatePolicy, deployedIamPolicy, IAM_SERVICES, IamContext, IamPolicy, IamServiceName } from './iam-policy';

/**
 * A small AWS Secrets Manager for tests: the AWS JSON 1.1 protocol (`POST /`,
 * `X-Amz-Target: secretsmanager.<Operation>`, `application/x-amz-json-1.1`, errors as
 * `{"__type","Message"}`) on 127.0.0.1, enforcing the rules the `aws` secret backend relies on:
 * a staging label sits on one version; `RemoveFromVersionId` must name the version that holds
 * the label; moving AWSCURRENT puts AWSPREVIOUS on the old holder; the first version gets
 * AWSCURRENT; ClientRequestToken idempotency; unlabelled versions are deprecated and only a
 * bounded number is kept; a secret scheduled for deletion refuses reads and writes until restored.
 * Every call is authorised as AWS would authorise it (ADR 0017): the access key id of the SigV4
 * signature names the caller, whose IAM policy is evaluated with the action, the secret's ARN,
 * its tags and the request's tags and parameters; a refusal is AccessDeniedException, before the
 * secret's existence is looked at. Signatures themselves are not verified. AWS's request-rate
 * quotas are enforced per quota (SECRETS_MANAGER_RATE_QUOTAS): a call beyond one is answered
 * `ThrottlingException` (HTTP 400, "Rate exceeded"), as AWS answers it.
 */
export interface SecretsManagerEmulatorOptions {
  /** Versions kept per secret before the oldest deprecated ones are dropped (AWS: about 100). */
  maxVersions?: number;
  /** Staging labels per secret (AWS quota: 20). */
  maxLabels?: number;
  /** Callers by access key id: an IAM policy, or 'unrestricted'. Default: EMULATOR_CREDENTIALS' roles with deploy/iam. */
  principals?: Record<string, IamPolicy | 'unrestricted'>;
  /** Where to listen: 127.0.0.1 and a free port unless set (a container listens on 0.0.0.0:4566). */
  host?: string;
  port?: number;
  /**
   * Per-second limits by quota name (SECRETS_MANAGER_RATE_QUOTAS), replacing AWS's defaults;
   * `false` turns throttling off. Default: AWS's documented quotas.
   */
  rateQuotas?: Partial<Record<RateQuotaName, number>> | false;
  /** Milliseconds now, for the rate quotas only; tests freeze or step it. Default Date.now. */
  clock?: () => number;
}

/**
 * AWS Secrets Manager's request-rate quotas per account and Region ("AWS Secrets Manager
 * quotas", Secrets Manager user guide), none adjustable. Operations in one quota share it:
 * `writes` is the "combined rate of PutSecretValue, RemoveRegionsFromReplication,
 * ReplicateSecretToRegion, StopReplicationToReplica, UpdateSecret and UpdateSecretVersionStage
 * API requests"; CreateSecret, DeleteSecret, RestoreSecret and ListSecretVersionIds each have a
 * quota of their own. AWS does not say how it counts a second; the emulator takes the strictest
 * reading — no more than the quota in any 1,000 ms, a sliding window — so a client that passes
 * here passes whatever bucket AWS uses. A throttled call does not count against the quota.
 */
const SECRETS_MANAGER_RATE_QUOTAS = {
  reads: { perSecond: 10_000, operations: ['DescribeSecret', 'GetSecretValue'] },
  writes: {
    perSecond: 50,
    operations: ['PutSecretValue', 'RemoveRegionsFromReplication', 'ReplicateSecretToRegion', 'StopReplicationToReplica', 'UpdateSecret', 'UpdateSecretVersionStage'],
  },
  createSecret: { perSecond: 50, operations: ['CreateSecret'] },
  deleteSecret: { perSecond: 50, operations: ['DeleteSecret'] },
  restoreSecret: { perSecond: 50, operations: ['RestoreSecret'] },
  listSecretVersionIds: { perSecond: 50, operations: ['ListSecretVersionIds'] },
  tagging: { perSecond: 50, operations: ['TagResource', 'UntagResource'] },
  rotation: { perSecond: 50, operations: ['RotateSecret', 'CancelRotateSecret'] },
  resourcePolicies: { perSecond: 50, operations: ['DeleteResourcePolicy', 'GetResourcePolicy', 'PutResourcePolicy', 'ValidateResourcePolicy'] },
  listSecrets: { perSecond: 100, operations: ['ListSecrets'] },
  batchGetSecretValue: { perSecond: 100, operations: ['BatchGetSecretValue'] },
} as const;

export type RateQuotaName = keyof typeof SECRETS_MANAGER_RATE_QUOTAS;

/** Not AWS's: `GET` here answers `rateQuotaUsage()` as JSON, for a benchmark running the emulator as a process. */
export const RATE_QUOTA_USAGE_PATH = '/_emulator/rate-quotas';

/** What one rate quota saw: calls let through and throttled, and the most let through in any second. */
export interface RateQuotaUsage {
  accepted: number;
  throttled: number;
  /** The most calls let through within any 1,000 ms. */
  peakPerSecond: number;
  /** Clock of the first and last call let through (ms). */
  firstAt?: number;
  lastAt?: number;
}

/** A sliding one-second window of the calls one quota let through. */
class RateWindow {
  private readonly times: number[] = [];
  private head = 0;
  readonly usage: RateQuotaUsage = { accepted: 0, throttled: 0, peakPerSecond: 0 };

  constructor(readonly perSecond: number) {}

  /** Counts the call at `now` and answers true, or answers false when the last second is full. */
  admit(now: number): boolean {
    while (this.head < this.times.length && this.times[this.head] <= now - 1_000) this.head++;
    if (this.head > 4_096) {
      this.times.splice(0, this.head);
      this.head = 0;
    }
    const inWindow = this.times.length - this.head;
    if (inWindow >= this.perSecond) {
      this.usage.throttled++;
      return false;
    }
    this.times.push(now);
    this.usage.accepted++;
    this.usage.peakPerSecond = Math.max(this.usage.peakPerSecond, inWindow + 1);
    this.usage.firstAt ??= now;
    this.usage.lastAt = now;
    return true;
  }
}

type Credentials = { accessKeyId: string; secretAccessKey: string };

/**
 * Credentials to call the emulator with: one per keyward IAM role (the emulator evaluates
 * `deploy/iam/<service>.json` for them), and one unrestricted caller for tests of the store's
 * semantics or of the emulator itself, standing in for no keyward role.
 */
export const EMULATOR_CREDENTIALS: Record<IamServiceName | 'unrestricted', Credentials> = {
  intake: { accessKeyId: 'AKIAKEYWARDINTAKE000', secretAccessKey: 'emulator' },
  validator: { accessKeyId: 'AKIAKEYWARDVALIDATOR', secretAccessKey: 'emulator' },
  rotation: { accessKeyId: 'AKIAKEYWARDROTATION0', secretAccessKey: 'emulator' },
  gateway: { accessKeyId: 'AKIAKEYWARDGATEWAY00', secretAccessKey: 'emulator' },
  unrestricted: { accessKeyId: 'AKIAEMULATORUNLIMITD', secretAccessKey: 'emulator' },
};

/** The environment a service process needs to call the emulator as its IAM role (a service without a role gets none). */
export function emulatorEnvFor(service: string, endpoint: string): Record<string, string> {
  const credentials = (IAM_SERVICES as readonly string[]).includes(service) ? EMULATOR_CREDENTIALS[service as IamServiceName] : { accessKeyId: 'AKIANOROLE', secretAccessKey: 'none' };
  return { AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoint, AWS_REGION: REGION, AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey };
}

function defaultPrincipals(): Record<string, IamPolicy | 'unrestricted'> {
  const principals: Record<string, IamPolicy | 'unrestricted'> = { [EMULATOR_CREDENTIALS.unrestricted.accessKeyId]: 'unrestricted' };
  for (const service of IAM_SERVICES) principals[EMULATOR_CREDENTIALS[service].accessKeyId] = deployedIamPolicy(service);
  return principals;
}

const REGION = 'eu-west-1';
const ACCOUNT = '000000000000';

interface Version {
  id: string;
  value: string;
  stages: Set<string>;
  created: number;
}

interface Secret {
  name: string;
  arn: string;
  description?: string;
  kmsKeyId?: string;
  tags: { Key: string; Value: string }[];
  created: number;
  deletedAt?: number;
  deletionDate?: number;
  versions: Map<string, Version>;
}

class AwsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const MAX_VALUE_BYTES = 65_536;
type Body = Record<string, unknown>;

export class SecretsManagerEmulator {
  private readonly secrets = new Map<string, Secret>();
  private readonly operations: string[] = [];
  private readonly faults: { operation: string; type: string; status: number; remaining: number }[] = [];
  private readonly denials: { accessKeyId: string; action: string; resource: string }[] = [];
  private readonly rateWindows = new Map<RateQuotaName, RateWindow>();
  private readonly quotaOf = new Map<string, RateQuotaName>();
  private clock = 0;

  private constructor(
    private readonly server: Server,
    readonly endpoint: string,
    private readonly maxVersions: number,
    private readonly maxLabels: number,
    private readonly principals: Record<string, IamPolicy | 'unrestricted'>,
    rateQuotas: Partial<Record<RateQuotaName, number>> | false,
    private readonly now: () => number,
  ) {
    if (rateQuotas === false) return;
    for (const [name, quota] of Object.entries(SECRETS_MANAGER_RATE_QUOTAS) as [RateQuotaName, (typeof SECRETS_MANAGER_RATE_QUOTAS)[RateQuotaName]][]) {
      this.rateWindows.set(name, new RateWindow(rateQuotas[name] ?? quota.perSecond));
      for (const operation of quota.operations) this.quotaOf.set(operation, name);
    }
  }

  static async start(options: SecretsManagerEmulatorOptions = {}): Promise<SecretsManagerEmulator> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const host = !options.host || options.host === '0.0.0.0' ? '127.0.0.1' : options.host;
    const emulator = new SecretsManagerEmulator(
      server,
      `http://${host}:${port}`,
      options.maxVersions ?? 100,
      options.maxLabels ?? 20,
      options.principals ?? defaultPrincipals(),
      options.rateQuotas ?? {},
      options.clock ?? Date.now,
    );
    server.on('request', (req, res) => void emulator.handle(req, res));
    return emulator;
  }

  /** Per rate quota: calls let through, calls throttled, the busiest second. Quotas never called are left out. */
  rateQuotaUsage(): Partial<Record<RateQuotaName, RateQuotaUsage>> {
    const usage: Partial<Record<RateQuotaName, RateQuotaUsage>> = {};
    for (const [name, window] of this.rateWindows) if (window.usage.accepted + window.usage.throttled > 0) usage[name] = { ...window.usage };
    return usage;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Drops injected failures not yet consumed. */
  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Operation names received (X-Amz-Target without the prefix), in order. */
  receivedOperations(): string[] {
    return [...this.operations];
  }

  clearReceivedOperations(): void {
    this.operations.length = 0;
  }

  /** The next `times` calls of `operation` fail with `type` (e.g. ThrottlingException, 400; InternalServiceError, 500). */
  failNext(operation: string, type: string, status = 400, times = 1): void {
    this.faults.push({ operation, type, status, remaining: times });
  }

  /** Calls refused by IAM, in order: who, which action, on which resource. */
  deniedCalls(): { accessKeyId: string; action: string; resource: string }[] {
    return [...this.denials];
  }

  /** Test inspection: every version id the emulator holds for a secret, deprecated ones included. */
  storedVersionIds(name: string): string[] {
    return [...(this.secrets.get(name)?.versions.keys() ?? [])];
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const target = String(req.headers['x-amz-target'] ?? '');
      if (req.method === 'GET' && req.url === RATE_QUOTA_USAGE_PATH) return this.send(res, 200, this.rateQuotaUsage(), requestId);
      if (req.method !== 'POST' || (req.url ?? '/') !== '/') throw new AwsError('UnknownOperationException', 'Only POST / is served');
      if (!String(req.headers['content-type'] ?? '').startsWith('application/x-amz-json-1.1')) {
        throw new AwsError('SerializationException', 'Content-Type must be application/x-amz-json-1.1');
      }
      if (!target.startsWith('secretsmanager.')) throw new AwsError('UnknownOperationException', 'X-Amz-Target must be secretsmanager.<Operation>');
      const operation = target.slice('secretsmanager.'.length);
      this.operations.push(operation);
      let body: Body;
      try {
        body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Body) : {};
      } catch {
        throw new AwsError('SerializationException', 'Body is not JSON');
      }
      this.authorize(req, operation, body);
      this.throttle(operation);
      const fault = this.faults.find((f) => f.operation === operation && f.remaining > 0);
      if (fault) {
        fault.remaining--;
        throw new AwsError(fault.type, `Injected ${fault.type}`, fault.status);
      }
      const result = this.dispatch(operation, body);
      this.send(res, 200, result, requestId);
    } catch (error) {
      const e = error instanceof AwsError ? error : new AwsError('InternalServiceError', 'Emulator failure', 500);
      this.send(res, e.status, { __type: e.type, Message: e.message }, requestId);
    }
  }

  /**
   * IAM first, as AWS does: a denied call never learns whether the secret exists. CreateSecret
   * with Tags is also authorised as TagResource (Secrets Manager API reference).
   */
  private authorize(req: IncomingMessage, operation: string, body: Body): void {
    const accessKeyId = /Credential=([^/,\s]+)\//.exec(String(req.headers.authorization ?? ''))?.[1];
    const principal = accessKeyId === undefined ? undefined : this.principals[accessKeyId];
    if (principal === undefined) throw new AwsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    if (principal === 'unrestricted') return;
    const { resource, context } = this.requestContext(operation, body);
    const actions = [operation, ...(operation === 'CreateSecret' && Array.isArray(body.Tags) && body.Tags.length > 0 ? ['TagResource'] : [])];
    for (const action of actions) {
      const decision = evaluatePolicy(principal, { action: `secretsmanager:${action}`, resource, context });
      if (!decision.allowed) {
        this.denials.push({ accessKeyId: accessKeyId!, action: `secretsmanager:${action}`, resource });
        const why = decision.reason === 'explicit_deny' ? 'with an explicit deny in an identity-based policy' : 'because no identity-based policy allows the action';
        throw new AwsError('AccessDeniedException', `User: ${accessKeyId} is not authorized to perform: secretsmanager:${action} on resource: ${resource} ${why}`);
      }
    }
  }

  /** AWS's answer to a call beyond its quota's rate: 400 ThrottlingException, "Rate exceeded". */
  private throttle(operation: string): void {
    const quota = this.quotaOf.get(operation);
    if (quota !== undefined && !this.rateWindows.get(quota)!.admit(this.now())) throw new AwsError('ThrottlingException', 'Rate exceeded');
  }

  /** The ARN and condition keys AWS would evaluate for this call (service authorization reference for Secrets Manager). */
  private requestContext(operation: string, body: Body): { resource: string; context: IamContext } {
    const context: IamContext = { 'aws:RequestedRegion': REGION };
    const id = typeof body.SecretId === 'string' ? body.SecretId : typeof body.Name === 'string' ? body.Name : '';
    const secret = operation === 'CreateSecret' ? undefined : (this.secrets.get(id) ?? [...this.secrets.values()].find((s) => s.arn === id));
    const resource = secret?.arn ?? (id.startsWith('arn:') ? id : `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${id}`);
    if (typeof body.SecretId === 'string') context['secretsmanager:SecretId'] = body.SecretId;
    for (const tag of secret?.tags ?? []) {
      context[`aws:ResourceTag/${tag.Key}`] = tag.Value;
      context[`secretsmanager:ResourceTag/${tag.Key}`] = tag.Value;
    }
    if (Array.isArray(body.Tags) && body.Tags.length > 0) {
      const tags = body.Tags as { Key: string; Value: string }[];
      for (const tag of tags) context[`aws:RequestTag/${tag.Key}`] = tag.Value;
      context['aws:TagKeys'] = tags.map((t) => t.Key);
    }
    const parameters: Record<string, string> = {
      Name: 'secretsmanager:Name',
      Description: 'secretsmanager:Description',
      KmsKeyId: 'secretsmanager:KmsKeyId',
      VersionId: 'secretsmanager:VersionId',
      VersionStage: 'secretsmanager:VersionStage',
      ForceDeleteWithoutRecovery: 'secretsmanager:ForceDeleteWithoutRecovery',
      RecoveryWindowInDays: 'secretsmanager:RecoveryWindowInDays',
    };
    for (const [parameter, key] of Object.entries(parameters)) {
      const value = body[parameter];
      if (value !== undefined && value !== null) context[key] = typeof value === 'string' ? value : JSON.stringify(value);
    }
    return { resource, context };
  }

  private send(res: ServerResponse, status: number, body: unknown, requestId: string): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/x-amz-json-1.1',
      'Content-Length': Buffer.byteLength(text),
      'x-amzn-RequestId': requestId,
    });
    res.end(text);
  }

  private dispatch(operation: string, body: Body): unknown {
    switch (operation) {
      case 'CreateSecret':
        return this.createSecret(body);
      case 'PutSecretValue':
        return this.putSecretValue(body);
      case 'GetSecretValue':
        return this.getSecretValue(body);
      case 'UpdateSecretVersionStage':
        return this.updateSecretVersionStage(body);
      case 'DescribeSecret':
        return this.describeSecret(body);
      case 'ListSecretVersionIds':
        return this.listSecretVersionIds(body);
      case 'DeleteSecret':
        return this.deleteSecret(body);
      case 'RestoreSecret':
        return this.restoreSecret(body);
      default:
        throw new AwsError('UnknownOperationException', `The emulator does not implement ${operation}`);
    }
  }

  private createSecret(body: Body): unknown {
    const name = str(body, 'Name', true)!;
    if (!NAME.test(name)) throw new AwsError('ValidationException', 'Invalid name');
    const existing = this.secrets.get(name);
    if (existing?.deletedAt !== undefined) throw new AwsError('InvalidRequestException', "You can't create this secret because a secret with this name is already scheduled for deletion.");
    if (existing) throw new AwsError('ResourceExistsException', 'The operation failed because the secret already exists.');
    const secret: Secret = {
      name,
      arn: `arn:aws:secretsmanager:eu-west-1:000000000000:secret:${name}-${randomBytes(3).toString('hex')}`,
      description: str(body, 'Description'),
      kmsKeyId: str(body, 'KmsKeyId'),
      tags: Array.isArray(body.Tags) ? (body.Tags as { Key: string; Value: string }[]) : [],
      created: this.tick(),
      versions: new Map(),
    };
    const value = str(body, 'SecretString');
    let versionId: string | undefined;
    if (value !== undefined) {
      checkValue(value);
      versionId = str(body, 'ClientRequestToken') ?? randomUUID();
      checkToken(versionId);
      secret.versions.set(versionId, { id: versionId, value, stages: new Set(['AWSCURRENT']), created: this.tick() });
    }
    this.secrets.set(name, secret);
    return { ARN: secret.arn, Name: name, ...(versionId ? { VersionId: versionId } : {}) };
  }

  private putSecretValue(body: Body): unknown {
    const secret = this.live(body);
    const value = str(body, 'SecretString', true)!;
    checkValue(value);
    const token = str(body, 'ClientRequestToken') ?? randomUUID();
    checkToken(token);
    const existing = secret.versions.get(token);
    if (existing) {
      // Idempotency on the token: the same value is a no-op, another value an error.
      if (existing.value !== value) throw new AwsError('ResourceExistsException', 'A version with this ClientRequestToken already exists with a different value.');
      return { ARN: secret.arn, Name: secret.name, VersionId: token, VersionStages: [...existing.stages] };
    }
    const requested = Array.isArray(body.VersionStages) ? (body.VersionStages as string[]) : ['AWSCURRENT'];
    const stages = new Set(requested);
    if (secret.versions.size === 0) stages.add('AWSCURRENT'); // AWS: the first version is always current.
    this.checkLabelQuota(secret, [...stages]);
    const version: Version = { id: token, value, stages: new Set(), created: this.tick() };
    secret.versions.set(token, version);
    for (const stage of stages) this.attach(secret, stage, version);
    this.prune(secret);
    return { ARN: secret.arn, Name: secret.name, VersionId: token, VersionStages: [...version.stages] };
  }

  private getSecretValue(body: Body): unknown {
    const secret = this.live(body);
    const versionId = str(body, 'VersionId');
    const stage = str(body, 'VersionStage');
    let version: Version | undefined;
    if (versionId !== undefined) {
      version = secret.versions.get(versionId);
      if (version && stage !== undefined && !version.stages.has(stage)) version = undefined;
    } else {
      version = [...secret.versions.values()].find((v) => v.stages.has(stage ?? 'AWSCURRENT'));
    }
    if (!version) throw new AwsError('ResourceNotFoundException', "Secrets Manager can't find the specified secret value.");
    return {
      ARN: secret.arn,
      Name: secret.name,
      VersionId: version.id,
      SecretString: version.value,
      VersionStages: [...version.stages],
      CreatedDate: version.created,
    };
  }

  private updateSecretVersionStage(body: Body): unknown {
    const secret = this.live(body);
    const stage = str(body, 'VersionStage', true)!;
    const moveTo = str(body, 'MoveToVersionId');
    const removeFrom = str(body, 'RemoveFromVersionId');
    const holder = [...secret.versions.values()].find((v) => v.stages.has(stage));
    if (removeFrom !== undefined && holder?.id !== removeFrom) {
      throw new AwsError('InvalidParameterException', `The staging label ${stage} is not attached to version ${removeFrom}.`);
    }
    if (moveTo !== undefined) {
      const target = secret.versions.get(moveTo);
      if (!target) throw new AwsError('ResourceNotFoundException', `Version ${moveTo} not found.`);
      if (holder && holder !== target && removeFrom === undefined) {
        throw new AwsError('InvalidParameterException', `The staging label ${stage} is attached to version ${holder.id}; name it in RemoveFromVersionId to move it.`);
      }
      if (holder !== target) this.checkLabelQuota(secret, holder ? [] : [stage]);
      this.attach(secret, stage, target);
    } else {
      if (removeFrom === undefined) throw new AwsError('InvalidParameterException', 'Specify MoveToVersionId, RemoveFromVersionId or both.');
      if (stage === 'AWSCURRENT') throw new AwsError('InvalidParameterException', 'You can only move staging label AWSCURRENT to a different secret version. It can’t be completely removed.');
      holder!.stages.delete(stage);
    }
    this.prune(secret);
    return { ARN: secret.arn, Name: secret.name };
  }

  private describeSecret(body: Body): unknown {
    const secret = this.find(body);
    const versionIdsToStages: Record<string, string[]> = {};
    for (const v of secret.versions.values()) if (v.stages.size > 0) versionIdsToStages[v.id] = [...v.stages];
    return {
      ARN: secret.arn,
      Name: secret.name,
      ...(secret.description ? { Description: secret.description } : {}),
      ...(secret.kmsKeyId ? { KmsKeyId: secret.kmsKeyId } : {}),
      Tags: secret.tags,
      CreatedDate: secret.created,
      ...(secret.deletedAt !== undefined ? { DeletedDate: secret.deletionDate } : {}),
      VersionIdsToStages: versionIdsToStages,
    };
  }

  private listSecretVersionIds(body: Body): unknown {
    const secret = this.find(body);
    const all = [...secret.versions.values()].filter((v) => body.IncludeDeprecated === true || v.stages.size > 0);
    const start = body.NextToken ? Number(body.NextToken) : 0;
    const max = typeof body.MaxResults === 'number' ? body.MaxResults : 100;
    const page = all.slice(start, start + max);
    return {
      ARN: secret.arn,
      Name: secret.name,
      Versions: page.map((v) => ({ VersionId: v.id, VersionStages: [...v.stages], CreatedDate: v.created })),
      ...(start + max < all.length ? { NextToken: String(start + max) } : {}),
    };
  }

  private deleteSecret(body: Body): unknown {
    const secret = this.find(body);
    if (secret.deletedAt !== undefined) throw new AwsError('InvalidRequestException', 'The secret is already scheduled for deletion.');
    if (body.ForceDeleteWithoutRecovery === true) {
      this.secrets.delete(secret.name);
      return { ARN: secret.arn, Name: secret.name, DeletionDate: Date.now() / 1000 };
    }
    const days = body.RecoveryWindowInDays === undefined ? 30 : Number(body.RecoveryWindowInDays);
    if (!Number.isInteger(days) || days < 7 || days > 30) throw new AwsError('InvalidParameterException', 'RecoveryWindowInDays must be 7–30.');
    secret.deletedAt = Date.now() / 1000;
    secret.deletionDate = secret.deletedAt + days * 86_400;
    return { ARN: secret.arn, Name: secret.name, DeletionDate: secret.deletionDate };
  }

  private restoreSecret(body: Body): unknown {
    const secret = this.find(body);
    secret.deletedAt = undefined;
    secret.deletionDate = undefined;
    return { ARN: secret.arn, Name: secret.name };
  }

  /** Puts `stage` on `version`, taking it off its holder; a moved AWSCURRENT leaves AWSPREVIOUS behind. */
  private attach(secret: Secret, stage: string, version: Version): void {
    const holder = [...secret.versions.values()].find((v) => v.stages.has(stage));
    if (holder === version) return;
    holder?.stages.delete(stage);
    version.stages.add(stage);
    if (stage === 'AWSCURRENT' && holder) {
      for (const v of secret.versions.values()) v.stages.delete('AWSPREVIOUS');
      holder.stages.add('AWSPREVIOUS');
    }
  }

  private checkLabelQuota(secret: Secret, adding: string[]): void {
    const labels = new Set<string>();
    for (const v of secret.versions.values()) for (const s of v.stages) labels.add(s);
    for (const s of adding) labels.add(s);
    if (labels.size > this.maxLabels) throw new AwsError('LimitExceededException', `A secret can have at most ${this.maxLabels} staging labels.`);
  }

  /** Deprecated (unlabelled) versions beyond the bound are dropped, oldest first, as AWS does. */
  private prune(secret: Secret): void {
    const deprecated = [...secret.versions.values()].filter((v) => v.stages.size === 0).sort((a, b) => a.created - b.created);
    while (secret.versions.size > this.maxVersions && deprecated.length > 0) secret.versions.delete(deprecated.shift()!.id);
  }

  private find(body: Body): Secret {
    const id = str(body, 'SecretId', true)!;
    const secret = this.secrets.get(id) ?? [...this.secrets.values()].find((s) => s.arn === id);
    if (!secret) throw new AwsError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    return secret;
  }

  /** A secret that is not scheduled for deletion: AWS refuses everything else on a deleted one. */
  private live(body: Body): Secret {
    const secret = this.find(body);
    if (secret.deletedAt !== undefined) {
      throw new AwsError('InvalidRequestException', "You can't perform this operation on the secret because it was marked for deletion.");
    }
    return secret;
  }

  /** Strictly increasing timestamps (seconds, with a sub-millisecond step) so "oldest" is well defined. */
  private tick(): number {
    this.clock = Math.max(this.clock + 0.001, Date.now() / 1000);
    return this.clock;
  }
}

function str(body: Body, key: string, required = false): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) {
    if (required) throw new AwsError('InvalidParameterException', `${key} is required.`);
    return undefined;
  }
  if (typeof value !== 'string') throw new AwsError('ValidationException', `${key} must be a string.`);
  return value;
}

function checkValue(value: string): void {
  if (Buffer.byteLength(value, 'utf8') > MAX_VALUE_BYTES) throw new AwsError('ValidationException', 'SecretString is larger than 65536 bytes.');
}

function checkToken(token: string): void {
  if (token.length < 32 || token.length > 64) throw new AwsError('ValidationException', 'ClientRequestToken must be 32–64 characters.');
}
