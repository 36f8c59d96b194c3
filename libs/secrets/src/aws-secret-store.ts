import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  DescribeSecretCommandOutput,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  RestoreSecretCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { ApiKey } from '@keyward/key-material';
import { SecretsRetryStrategy } from './aws-retry';
import { describeSelector } from './local-secret-store';
import { assertRecoveryWindow, assertTenantId, assertValueSize, assertVersionId, SecretNaming, READINESS_TENANT, secretNameFor } from './secret-name';
import { quotaOf, SecretsCallBudget, SecretsManagerQuota, SecretsQuotaMetrics } from './secrets-manager-quotas';
import { SecretDescription, SecretErrorCode, SecretStore, SecretStoreError, SecretVersionInfo, VersionSelector } from './secret-store';

/**
 * Secrets Manager puts AWSCURRENT on the first version of a secret whatever VersionStages says.
 * So a secret is created with this placeholder version (never a key) holding AWSCURRENT; "no
 * active credential" is then AWSCURRENT on the placeholder, and the compare-and-swap of the first
 * promotion is RemoveFromVersionId = placeholder. Reads of it are refused; describe hides it.
 */
export const NO_CREDENTIAL_VERSION_ID = '00000000-0000-4000-8000-000000000000';
const NO_CREDENTIAL_VALUE = '{"keyward":"no-active-credential"}';
/**
 * AWS cannot delete one version. A disabled version instead carries this label (one per version,
 * since a label sits on one version only) and every read that sees it discards the value.
 * Secrets Manager allows 20 labels per secret: markers are kept for the most recently disabled
 * versions only (MAX_DISABLED_MARKERS). An older disabled version loses its marker and becomes
 * deprecated, which lets AWS delete it; its revocation row still refuses every keyward read.
 */
const DISABLED_LABEL_PREFIX = 'KEYWARD_DISABLED_';
/** AWSCURRENT, AWSPENDING and AWSPREVIOUS, plus markers, within AWS's 20 labels per secret. */
const MAX_DISABLED_MARKERS = 16;
/** Describe with this tenant id answers ResourceNotFound: reachability and permission without a value. */

export interface AwsSecretStoreOptions {
  region: string;
  endpoint?: string;
  kmsKeyId?: string;
  maxAttempts: number;
  naming: SecretNaming;
  /** Tests only: static credentials for an emulator. Production uses the default provider chain (IAM role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Backoff base, tests shorten it. */
  retryBaseDelayMs?: number;
  /**
   * The cluster-wide budget each call that spends one of Secrets Manager's 50-per-second quotas
   * waits for (ADR 0033). Without one, such calls are still retried on ThrottlingException.
   */
  budget?: SecretsCallBudget;
  metrics?: SecretsQuotaMetrics;
  /** How long a call spending a quota keeps retrying ThrottlingException before it fails `throttled`. */
  throttleRetryMs?: number;
}

type Labels = Map<string, { stages: string[]; createdAt?: Date }>;

/** A call throttled this long (retried with backoff, a turn in the budget each time) fails `throttled`. */
const THROTTLE_RETRY_MS = 60_000;
const MAX_BACKOFF_MS = 5_000;

type Command = Parameters<SecretsManagerClient['send']>[0];

export class AwsSecretStore implements SecretStore {
  readonly backend = 'aws' as const;
  /** Reads: the SDK retries throttling and 5xx up to maxAttempts. */
  private readonly client: SecretsManagerClient;
  /** Calls that spend a quota: one attempt per send, so each retry waits for a turn of its own. */
  private readonly quotaClient: SecretsManagerClient;

  constructor(private readonly options: AwsSecretStoreOptions) {
    const common = {
      region: options.region,
      endpoint: options.endpoint,
      credentials: options.credentials,
      requestHandler: { connectionTimeout: 2_000, requestTimeout: 10_000 },
    };
    this.client = new SecretsManagerClient({
      ...common,
      maxAttempts: options.maxAttempts,
      retryStrategy: new SecretsRetryStrategy({ maxAttempts: options.maxAttempts, baseDelayMs: options.retryBaseDelayMs }),
    });
    this.quotaClient = new SecretsManagerClient({ ...common, maxAttempts: 1 });
  }

  async putPending(tenantId: string, versionId: string, key: ApiKey): Promise<void> {
    const name = secretNameFor(this.options.naming, tenantId);
    assertVersionId(versionId);
    assertValueSize(tenantId, key.reveal());
    const put = () => this.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: versionId, SecretString: key.reveal(), VersionStages: ['AWSPENDING'] }));
    // A read first (DescribeSecret spends none of the 50/s quotas): a new tenant's secret is then
    // created before the write, instead of after a PutSecretValue that fails and still counts
    // against the write quota; a reinstall is restored before it. The fallbacks stay for races.
    const described = await this.describeSecret(tenantId, name);
    if (!described) await this.createSecret(tenantId, name);
    else if (described.DeletedDate) await this.call('restore the secret', tenantId, () => this.send(new RestoreSecretCommand({ SecretId: name })));
    try {
      await put();
      return;
    } catch (error) {
      const first = errorName(error);
      if (first === 'ResourceNotFoundException') {
        await this.createSecret(tenantId, name);
      } else if (first === 'InvalidRequestException' && (await this.isScheduledForDeletion(tenantId, name))) {
        // A submission after an uninstall is a reinstall: cancel the deletion, then store.
        await this.call('restore the secret', tenantId, () => this.send(new RestoreSecretCommand({ SecretId: name })));
      } else {
        throw this.mapError(error, 'store the pending version', tenantId, { ResourceExistsException: differentValue(tenantId, versionId) });
      }
    }
    await this.call('store the pending version', tenantId, put, { ResourceExistsException: differentValue(tenantId, versionId) });
  }

  async getValue(tenantId: string, selector: VersionSelector): Promise<{ versionId: string; key: ApiKey }> {
    const name = secretNameFor(this.options.naming, tenantId);
    if ('versionId' in selector) assertVersionId(selector.versionId);
    let output;
    try {
      output = await this.send(new GetSecretValueCommand('versionId' in selector ? { SecretId: name, VersionId: selector.versionId } : { SecretId: name, VersionStage: selector.stage }));
    } catch (error) {
      if (errorName(error) === 'InvalidRequestException' && (await this.isScheduledForDeletion(tenantId, name))) {
        throw new SecretStoreError('scheduled_for_deletion', `The secret of tenant ${tenantId} is scheduled for deletion; restore it first`);
      }
      throw this.mapError(error, `read version ${describeSelector(selector)}`, tenantId);
    }
    const versionId = output.VersionId ?? '';
    if ((output.VersionStages ?? []).some((s) => s.startsWith(DISABLED_LABEL_PREFIX))) {
      throw new SecretStoreError('disabled', `Version ${versionId} of tenant ${tenantId} is disabled`);
    }
    if (versionId === NO_CREDENTIAL_VERSION_ID || typeof output.SecretString !== 'string' || output.SecretString.length === 0) {
      throw new SecretStoreError('not_found', `Tenant ${tenantId} has no version ${describeSelector(selector)}`);
    }
    return { versionId, key: ApiKey.fromTrusted(output.SecretString) };
  }

  async promote(tenantId: string, versionId: string, expectedCurrentVersionId: string | null): Promise<void> {
    const name = secretNameFor(this.options.naming, tenantId);
    assertVersionId(versionId);
    const labels = await this.labels(tenantId, name);
    const target = labels.get(versionId);
    if (!target) throw new SecretStoreError('not_found', `Tenant ${tenantId} has no version ${versionId}`);
    if (isDisabled(target.stages)) throw new SecretStoreError('disabled', `Version ${versionId} of tenant ${tenantId} is disabled`);
    const current = holderOf(labels, 'AWSCURRENT');
    if (current !== versionId) {
      const expected = expectedCurrentVersionId ?? NO_CREDENTIAL_VERSION_ID;
      if (current !== expected) throw conflict(tenantId, current, expectedCurrentVersionId);
      try {
        // The compare-and-swap: AWS refuses the move if AWSCURRENT is no longer on `expected`.
        await this.send(new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: 'AWSCURRENT', MoveToVersionId: versionId, RemoveFromVersionId: expected }));
      } catch (error) {
        if (errorName(error) !== 'InvalidParameterException') throw this.mapError(error, 'promote a version', tenantId);
        const now = holderOf(await this.labels(tenantId, name), 'AWSCURRENT');
        if (now !== versionId) throw conflict(tenantId, now, expectedCurrentVersionId);
      }
    }
    // Clean-up, also finishing a promotion that was interrupted after the move: AWSPENDING off
    // the promoted version, and the superseded version (AWS labelled it AWSPREVIOUS) unlabelled.
    const after = await this.labels(tenantId, name);
    if (after.get(versionId)?.stages.includes('AWSPENDING')) await this.removeLabel(tenantId, name, 'AWSPENDING', versionId);
    const previous = holderOf(after, 'AWSPREVIOUS');
    if (previous) await this.removeLabel(tenantId, name, 'AWSPREVIOUS', previous);
  }

  async retire(tenantId: string, versionId: string): Promise<void> {
    const name = secretNameFor(this.options.naming, tenantId);
    assertVersionId(versionId);
    const labels = await this.labels(tenantId, name);
    const version = labels.get(versionId);
    if (!version) throw new SecretStoreError('not_found', `Tenant ${tenantId} has no version ${versionId}`);
    await this.stripLabels(tenantId, name, versionId, version.stages);
  }

  async disable(tenantId: string, versionId: string): Promise<void> {
    const name = secretNameFor(this.options.naming, tenantId);
    assertVersionId(versionId);
    const labels = await this.labels(tenantId, name);
    const version = labels.get(versionId);
    if (!version) throw new SecretStoreError('not_found', `Tenant ${tenantId} has no version ${versionId}`);
    // The marker first: from this call on, every read of the version refuses it.
    if (!isDisabled(version.stages)) {
      // Room within the label quota: the oldest markers go (ADR 8); a compromise must never fail on it.
      const marked = [...labels.entries()].filter(([, v]) => isDisabled(v.stages)).sort(([, a], [, b]) => (a.createdAt?.getTime() ?? 0) - (b.createdAt?.getTime() ?? 0));
      for (const [id, v] of marked.slice(0, Math.max(0, marked.length - MAX_DISABLED_MARKERS + 1))) {
        for (const stage of v.stages.filter((s) => s.startsWith(DISABLED_LABEL_PREFIX))) await this.removeLabel(tenantId, name, stage, id);
      }
      await this.call('disable a version', tenantId, () =>
        this.send(new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: DISABLED_LABEL_PREFIX + versionId, MoveToVersionId: versionId })),
      );
    }
    await this.stripLabels(tenantId, name, versionId, version.stages);
  }

  async scheduleDeletion(tenantId: string, recoveryWindowDays: number): Promise<void> {
    const name = secretNameFor(this.options.naming, tenantId);
    assertRecoveryWindow(recoveryWindowDays);
    try {
      await this.send(new DeleteSecretCommand({ SecretId: name, RecoveryWindowInDays: recoveryWindowDays }));
    } catch (error) {
      // Already scheduled: AWS refuses a second DeleteSecret; the first date stands.
      if (errorName(error) === 'InvalidRequestException' && (await this.isScheduledForDeletion(tenantId, name))) return;
      throw this.mapError(error, 'schedule deletion', tenantId);
    }
  }

  async restore(tenantId: string): Promise<void> {
    const name = secretNameFor(this.options.naming, tenantId);
    await this.call('restore the secret', tenantId, () => this.send(new RestoreSecretCommand({ SecretId: name })));
  }

  async describe(tenantId: string): Promise<SecretDescription | null> {
    const name = secretNameFor(this.options.naming, tenantId);
    const described = await this.describeSecret(tenantId, name);
    if (!described) return null;
    const labels = await this.labels(tenantId, name);
    const versions: SecretVersionInfo[] = [...labels.entries()]
      .filter(([id]) => id !== NO_CREDENTIAL_VERSION_ID)
      .map(([versionId, v]) => ({
        versionId,
        stages: v.stages.filter((s) => !s.startsWith(DISABLED_LABEL_PREFIX)),
        createdAt: v.createdAt ?? described.CreatedDate ?? new Date(0),
        disabled: isDisabled(v.stages),
      }))
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.versionId.localeCompare(b.versionId));
    return { name, tenantId, versions, deletionScheduledFor: described.DeletedDate ?? null };
  }

  async ping(): Promise<void> {
    await this.describeSecret(READINESS_TENANT, secretNameFor(this.options.naming, READINESS_TENANT));
  }

  destroy(): void {
    this.client.destroy();
    this.quotaClient.destroy();
  }

  /**
   * Every call goes through here. A call that spends one of Secrets Manager's 50-per-second
   * quotas first waits for its turn in the shared budget; a ThrottlingException that happens
   * anyway is retried with full-jitter backoff (a new turn each time) for up to
   * THROTTLE_RETRY_MS, and 5xx or network failures up to maxAttempts, as the SDK would.
   */
  private readonly send = ((command: Command) => {
    const quota = quotaOf(operationOf(command));
    return quota ? this.sendSpending(quota, command) : this.client.send(command);
  }) as SecretsManagerClient['send'];

  private async sendSpending(quota: SecretsManagerQuota, command: Command): Promise<unknown> {
    const started = Date.now();
    const throttleRetryMs = this.options.throttleRetryMs ?? THROTTLE_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      await this.options.budget?.take(quota);
      try {
        return await this.quotaClient.send(command);
      } catch (error) {
        const [code, transient] = codeFor(errorName(error), statusOf(error));
        const throttled = code === 'throttled';
        const again = throttled ? Date.now() - started < throttleRetryMs : transient && attempt < this.options.maxAttempts;
        if (throttled) this.options.metrics?.throttled(quota, again ? 'retried' : 'surfaced');
        if (!again) throw error;
        const ceiling = Math.min(MAX_BACKOFF_MS, (this.options.retryBaseDelayMs ?? 100) * 2 ** Math.min(attempt - 1, 16));
        await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * ceiling)));
      }
    }
  }

  private async createSecret(tenantId: string, name: string): Promise<void> {
    assertTenantId(tenantId);
    try {
      await this.send(
        new CreateSecretCommand({
          Name: name,
          Description: 'keyward: Pleo Integrated API Key of one tenant',
          KmsKeyId: this.options.kmsKeyId,
          SecretString: NO_CREDENTIAL_VALUE,
          ClientRequestToken: NO_CREDENTIAL_VERSION_ID,
          // The IAM policies allow CreateSecret only with this tag, so access can follow the tenant.
          Tags: [{ Key: 'tenant-id', Value: tenantId }],
        }),
      );
    } catch (error) {
      // Created concurrently by another submission of the same tenant: fine.
      if (errorName(error) !== 'ResourceExistsException') throw this.mapError(error, 'create the secret', tenantId);
    }
  }

  private async describeSecret(tenantId: string, name: string): Promise<DescribeSecretCommandOutput | null> {
    try {
      return await this.send(new DescribeSecretCommand({ SecretId: name }));
    } catch (error) {
      if (errorName(error) === 'ResourceNotFoundException') return null;
      throw this.mapError(error, 'describe the secret', tenantId);
    }
  }

  private async isScheduledForDeletion(tenantId: string, name: string): Promise<boolean> {
    const described = await this.describeSecret(tenantId, name);
    return Boolean(described?.DeletedDate);
  }

  /** Every version, deprecated ones included, with its labels. */
  private async labels(tenantId: string, name: string): Promise<Labels> {
    const labels: Labels = new Map();
    let nextToken: string | undefined;
    // Bounded: AWS keeps about 100 deprecated versions, so a handful of pages at most.
    for (let page = 0; page < 20; page++) {
      const output = await this.call('list versions', tenantId, () => this.send(new ListSecretVersionIdsCommand({ SecretId: name, IncludeDeprecated: true, MaxResults: 100, NextToken: nextToken })));
      for (const v of output.Versions ?? []) if (v.VersionId) labels.set(v.VersionId, { stages: v.VersionStages ?? [], createdAt: v.CreatedDate });
      nextToken = output.NextToken;
      if (!nextToken) break;
    }
    return labels;
  }

  /** Every label off `versionId` except its disabled marker; AWSCURRENT goes back to the placeholder. */
  private async stripLabels(tenantId: string, name: string, versionId: string, stages: string[]): Promise<void> {
    if (stages.includes('AWSCURRENT')) {
      await this.call('retire the current version', tenantId, () =>
        this.send(new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: 'AWSCURRENT', MoveToVersionId: NO_CREDENTIAL_VERSION_ID, RemoveFromVersionId: versionId })),
      );
    }
    const after = (await this.labels(tenantId, name)).get(versionId)?.stages ?? [];
    for (const stage of after) {
      if (!stage.startsWith(DISABLED_LABEL_PREFIX)) await this.removeLabel(tenantId, name, stage, versionId);
    }
  }

  private async removeLabel(tenantId: string, name: string, stage: string, versionId: string): Promise<void> {
    try {
      await this.send(new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: stage, RemoveFromVersionId: versionId }));
    } catch (error) {
      // Already gone (a concurrent clean-up): the goal is reached.
      if (errorName(error) === 'InvalidParameterException') return;
      throw this.mapError(error, `remove ${stage} from version ${versionId}`, tenantId);
    }
  }

  private async call<T>(what: string, tenantId: string, work: () => Promise<T>, overrides: Partial<Record<string, SecretStoreError>> = {}): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw this.mapError(error, what, tenantId, overrides);
    }
  }

  /**
   * AWS errors become SecretStoreError with a code. Only the error name, HTTP status and request
   * id are kept — never AWS's message or the error object as `cause`: an emulator or a proxy
   * may echo request parameters, and a request parameter may be a key.
   */
  private mapError(error: unknown, what: string, tenantId: string, overrides: Partial<Record<string, SecretStoreError>> = {}): SecretStoreError {
    if (error instanceof SecretStoreError) return error;
    const name = errorName(error);
    const override = overrides[name];
    if (override) return override;
    const meta = (error as { $metadata?: { httpStatusCode?: number; requestId?: string } })?.$metadata ?? {};
    const status = statusOf(error);
    const [code, transient] = codeFor(name, status);
    const detail = [name, status ? `HTTP ${status}` : undefined, meta.requestId ? `request ${meta.requestId}` : undefined].filter(Boolean).join(', ');
    return new SecretStoreError(code, `Secrets Manager could not ${what} for tenant ${tenantId} (${detail})`, transient);
  }
}

function codeFor(name: string, status: number | undefined): [SecretErrorCode, boolean] {
  switch (name) {
    case 'ResourceNotFoundException':
      return ['not_found', false];
    case 'ResourceExistsException':
      return ['already_exists', false];
    case 'LimitExceededException':
      return ['quota_exceeded', false];
    case 'ThrottlingException':
    case 'TooManyRequestsException':
    case 'RequestLimitExceeded':
      return ['throttled', true];
    case 'AccessDeniedException':
    case 'UnrecognizedClientException':
    case 'InvalidSignatureException':
    case 'ExpiredTokenException':
    case 'InvalidClientTokenId':
      return ['access_denied', false];
    case 'DecryptionFailure':
    case 'EncryptionFailure':
      return ['crypto_failure', false];
    case 'InvalidParameterException':
    case 'InvalidRequestException':
    case 'MalformedPolicyDocumentException':
    case 'PreconditionNotMetException':
      return ['invalid_request', false];
    default:
      if (status === undefined || status >= 500) return ['unavailable', true];
      if (status === 429) return ['throttled', true];
      if (status === 403) return ['access_denied', false];
      return ['invalid_request', false];
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** `PutSecretValueCommand` → `PutSecretValue`: the operation, as AWS names it in quotas and IAM. */
function operationOf(command: Command): string {
  return command.constructor.name.replace(/Command$/, '');
}

function errorName(error: unknown): string {
  const name = (error as { name?: unknown })?.name;
  return typeof name === 'string' ? name : 'UnknownError';
}

function isDisabled(stages: string[]): boolean {
  return stages.some((s) => s.startsWith(DISABLED_LABEL_PREFIX));
}

function holderOf(labels: Labels, stage: string): string | null {
  for (const [id, v] of labels) if (v.stages.includes(stage)) return id;
  return null;
}

function conflict(tenantId: string, current: string | null, expected: string | null): SecretStoreError {
  const shown = (id: string | null) => (id === null || id === NO_CREDENTIAL_VERSION_ID ? 'no version' : id);
  return new SecretStoreError('conflict', `AWSCURRENT of tenant ${tenantId} is on ${shown(current)}, not on ${shown(expected)}`);
}

function differentValue(tenantId: string, versionId: string): SecretStoreError {
  return new SecretStoreError('already_exists', `Version ${versionId} of tenant ${tenantId} already exists with a different value`);
}
