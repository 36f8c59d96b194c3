import { join } from 'node:path';
import { RuleTester } from 'eslint';
import keyward from './keyward-plugin.cjs';
import { entityTables, ownersFromContract } from './table-owners.cjs';

const root = join(__dirname, '..');
const at = (path: string) => join(root, path);
const tester = new RuleTester();

describe('import boundaries', () => {
  tester.run('import-boundaries', keyward.rules['import-boundaries'], {
    valid: [
      { filename: at('apps/intake/main.ts'), code: "import { IntakeModule } from './intake.module';" },
      { filename: at('apps/intake/submissions/submissions.service.ts'), code: "import { Outbox } from '@keyward/messaging'; import { x } from '../auth/caller';" },
      { filename: at('libs/messaging/src/outbox.ts'), code: "import { AuditLog } from '@keyward/persistence'; import { z } from 'zod';" },
      { filename: at('libs/pleo/src/pleo-client.spec.ts'), code: "import { startPleoSandbox } from '../../../apps/pleo-sandbox/start-pleo-sandbox';", options: [{ allow: ['pleo-sandbox'] }] },
      { filename: at('test/e2e/lifecycle.test.ts'), code: "import { intakeService } from '../../apps/intake/intake.definition';" },
    ],
    invalid: [
      { filename: at('libs/pleo/src/pleo-client.ts'), code: "import { startPleoSandbox } from '../../../apps/pleo-sandbox/start-pleo-sandbox';", errors: [{ messageId: 'libImportsApp' }] },
      { filename: at('apps/rotation/lifecycle.repository.ts'), code: "import { verdict } from '../validator/verdict';", errors: [{ messageId: 'appImportsApp' }] },
      {
        filename: at('apps/intake/connections/view.ts'),
        code: "export { x } from '../../monitor/health'; const y = require('../../rotation/z');",
        errors: [{ messageId: 'appImportsApp' }, { messageId: 'appImportsApp' }],
      },
      { filename: at('apps/intake/connections/view.ts'), code: "const m = import('../../gateway/main');", errors: [{ messageId: 'appImportsApp' }] },
    ],
  });
});

describe('table writers', () => {
  const options = [{ owners: { submissions: 'intake', connections: 'rotation' }, libraryTables: { outbox: '@keyward/messaging' }, entities: { ConnectionEntity: 'connections' } }];
  tester.run('table-writers', keyward.rules['table-writers'], {
    valid: [
      { filename: at('apps/intake/submissions/submission.repository.ts'), options, code: "tx.query('INSERT INTO submissions (id) VALUES ($1)', [id]);" },
      { filename: at('apps/intake/submissions/submission.repository.ts'), options, code: 'tx.query(`UPDATE submissions s SET status = $2 WHERE id = $1`, [id, status]);' },
      // Reads, row locks and an upsert's own conflict clause are not writes to another table.
      { filename: at('apps/intake/connections/connection.repository.ts'), options, code: "tx.query('SELECT * FROM connections WHERE tenant_id = $1 FOR UPDATE SKIP LOCKED');" },
      { filename: at('apps/intake/x.ts'), options, code: "tx.query('INSERT INTO submissions (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id');" },
      { filename: at('apps/rotation/lifecycle.repository.ts'), options, code: 'tx.getRepository(ConnectionEntity).save(next);' },
      { filename: at('libs/messaging/src/outbox.ts'), options, code: "tx.query('INSERT INTO outbox (id) VALUES ($1)');" },
      { filename: at('apps/intake/x.ts'), options, code: 'tx.getRepository(ConnectionEntity).findOne({ where: { tenantId } });' },
    ],
    invalid: [
      {
        filename: at('apps/monitor/x.ts'),
        options,
        code: "tx.query('UPDATE connections SET status = $1');",
        errors: [{ messageId: 'notOwner', data: { table: 'connections', owner: 'rotation', writer: 'monitor' } }],
      },
      { filename: at('apps/intake/x.ts'), options, code: 'tx.getRepository(ConnectionEntity).update({ tenantId }, { status });', errors: [{ messageId: 'notOwner' }] },
      { filename: at('apps/intake/x.ts'), options, code: 'tx.save(ConnectionEntity, row);', errors: [{ messageId: 'notOwner' }] },
      { filename: at('apps/intake/x.ts'), options, code: 'tx.query(`DELETE FROM connections WHERE tenant_id = ${"$"}1`);', errors: [{ messageId: 'notOwner' }] },
      { filename: at('apps/intake/x.ts'), options, code: "tx.query('INSERT INTO rate_windows (k) VALUES ($1)');", errors: [{ messageId: 'unowned', data: { table: 'rate_windows' } }] },
      { filename: at('apps/monitor/x.ts'), options, code: "tx.query('UPDATE outbox SET published_at = NULL');", errors: [{ messageId: 'notThroughLibrary' }] },
      { filename: at('libs/persistence/src/x.ts'), options, code: "tx.query('INSERT INTO submissions (id) VALUES ($1)');", errors: [{ messageId: 'notOwner' }] },
    ],
  });
});

describe('the table owners the rule reads', () => {
  it('come from the services table of docs/architecture.md, one owner per table', () => {
    expect(ownersFromContract()).toMatchObject({ submissions: 'intake', validations: 'validator', connections: 'rotation', connection_health: 'monitor', gateway_rate_leases: 'gateway' });
    expect(() => ownersFromContract('| service | owns (single writer) |\n|---|---|\n| `a` | `t` |\n| `b` | `t` |\n')).toThrow('table t has two owners, a and b');
    expect(() => ownersFromContract('# no table here\n')).toThrow('no table with an "owns" column');
  });

  it('map every entity to its table', () => {
    expect(entityTables()).toMatchObject({ SubmissionEntity: 'submissions', ConnectionEntity: 'connections', AuditEntryEntity: 'audit_log' });
  });
});
