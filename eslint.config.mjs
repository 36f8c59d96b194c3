// Lint for keyward: typescript-eslint's type-checked rules and the architecture contract's boundaries.
// Why each tool and each adjusted rule: docs/adr/0030-lint-and-boundaries.md.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import keyward from './lint/keyward-plugin.cjs';
import { entityTables, ownersFromContract } from './lint/table-owners.cjs';

/** Code that never ships: tests, their harnesses and fixtures. */
const TEST_CODE = ['**/*.spec.ts', '**/*.test.ts', '**/test/**', 'test/**', 'libs/testing/**', 'apps/intake/test/connect-screenshots.ts', 'jest*.config.ts'];

/**
 * Tables that every service writes for its own rows, through one library: the messaging tables,
 * the append-only audit log, and the `local` secret backend's tables (docs/architecture.md).
 */
const LIBRARY_TABLES = {
  outbox: '@keyward/messaging',
  inbox: '@keyward/messaging',
  scheduled_retries: '@keyward/messaging',
  redeliveries: '@keyward/messaging',
  audit_log: '@keyward/persistence',
  secrets: '@keyward/secrets',
  secret_versions: '@keyward/secrets',
  rate_budget_leases: '@keyward/rate-budgets',
};

export default defineConfig(
  { ignores: ['dist/**', 'coverage/**', '.keyward/**', '.bench-build/**'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // `_name` marks a parameter an interface makes us take, as tsc's noUnusedParameters already reads it.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
      // `async` without `await` is how a function keeps a Promise-returning contract (readiness
      // checks, the AWS SDK's retry strategy, test factories): a throw becomes a rejection.
      // Forgotten awaits are caught by no-floating-promises and no-misused-promises instead.
      '@typescript-eslint/require-await': 'off',
      // Passing on a rejection reason we were handed (a callback's `err`) is not inventing a non-Error.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
    },
  },
  { plugins: { keyward }, linterOptions: { reportUnusedDisableDirectives: 'error' } },
  {
    // Untyped JSON is the subject of a test (HTTP bodies, YAML manifests, broker API answers):
    // `expect` checks its shape, so the any-propagation rules would only ask for casts.
    files: TEST_CODE,
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['apps/**/*.ts', 'libs/**/*.ts'],
    rules: {
      'keyward/import-boundaries': 'error',
      'keyward/table-writers': ['error', { owners: ownersFromContract(), libraryTables: LIBRARY_TABLES, entities: entityTables() }],
    },
  },
  {
    // One persistence style (ADR 0046): services decide and controllers translate HTTP; the SQL
    // lives in repositories (and the libraries' table owners), which take the EntityManager to run on.
    files: ['apps/**/*.service.ts', 'apps/**/*.controller.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'CallExpression[callee.property.name=/^(query|getRepository|getTreeRepository|createQueryBuilder)$/]',
          message: 'SQL and entity access belong in a *.repository.ts (ADR 0046); call the repository with the EntityManager to run on.',
        },
        {
          selector: 'CallExpression[callee.property.name=/^(save|insert|update|upsert|delete|remove|find|findOne|findBy|findOneBy|count|exists)$/][callee.object.name=/^(tx|manager|db|em)$/]',
          message: "An EntityManager's entity methods belong in a *.repository.ts (ADR 0046).",
        },
      ],
    },
  },
  {
    // A library's spec may start the Pleo sandbox: it is Pleo's stand-in, not a keyward service.
    files: ['libs/**/*.spec.ts', 'apps/**/*.spec.ts'],
    rules: { 'keyward/import-boundaries': ['error', { allow: ['pleo-sandbox'] }] },
  },
  {
    // An app's test/ holds its cross-service and end-to-end tests (STYLE.md): they start the
    // other services.
    files: ['apps/*/test/**'],
    rules: { 'keyward/import-boundaries': 'off' },
  },
  {
    // An app's own tests stand in for other services only through @keyward/testing's owner-rows
    // (issue 15, item 7), so the table-writers rule holds for apps/*/test too.
    files: [...TEST_CODE, 'libs/persistence/src/migrations/**'],
    ignores: ['apps/*/test/**'],
    rules: { 'keyward/table-writers': 'off' },
  },
  {
    files: ['**/*.{js,mjs,cjs}'],
    extends: [js.configs.recommended],
  },
  {
    files: ['apps/intake/connect/assets/*.js'],
    languageOptions: { sourceType: 'script', globals: globals.browser },
  },
  {
    files: ['lint/**/*.cjs', '.ci/**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: globals.node },
  },
  {
    files: ['*.mjs'],
    languageOptions: { globals: globals.node },
  },
);
