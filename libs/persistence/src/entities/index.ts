import { AuditEntryEntity } from './audit-entry.entity';
import { ConnectionHealthEntity } from './connection-health.entity';
import { ConnectionEntity } from './connection.entity';
import { CredentialEntity } from './credential.entity';
import { InstallSessionEntity } from './install-session.entity';
import { RevocationEntity } from './revocation.entity';
import { SubmissionEntity } from './submission.entity';
import { UninstallEntity } from './uninstall.entity';
import { ValidationEntity } from './validation.entity';

export * from './audit-entry.entity';
export * from './connection-health.entity';
export * from './connection.entity';
export * from './credential.entity';
export * from './install-session.entity';
export * from './revocation.entity';
export * from './submission.entity';
export * from './uninstall.entity';
export * from './validation.entity';

export const ENTITIES = [AuditEntryEntity, ConnectionHealthEntity, ConnectionEntity, CredentialEntity, InstallSessionEntity, RevocationEntity, SubmissionEntity, UninstallEntity, ValidationEntity];
