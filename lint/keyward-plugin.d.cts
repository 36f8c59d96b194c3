import type { ESLint, Rule } from 'eslint';

declare const plugin: ESLint.Plugin & { rules: Record<'import-boundaries' | 'table-writers', Rule.RuleModule> };
export = plugin;
