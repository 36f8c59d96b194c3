import { evaluatePolicy, IamContext, IamPolicy, IamStatement } from './iam-policy';

/** AWS's documented evaluation rules, one row each (IAM User Guide: policy evaluation logic, condition operators). */
const ARN = 'arn:aws:secretsmanager:eu-west-1:000000000000:secret:keyward/prod/tenants/t1/pleo/integrated-api-key-AbCdEf';
const allow = (extra: Partial<IamStatement> = {}): IamStatement => ({
  Effect: 'Allow',
  Action: 'secretsmanager:GetSecretValue',
  Resource: 'arn:aws:secretsmanager:*:*:secret:keyward/*/tenants/*',
  ...extra,
});
const policy = (...Statement: IamStatement[]): IamPolicy => ({ Version: '2012-10-17', Statement });
const run = (p: IamPolicy, context: IamContext = {}, action = 'secretsmanager:GetSecretValue', resource = ARN) => evaluatePolicy(p, { action, resource, context });
const tagged = { 'secretsmanager:ResourceTag/tenant-id': 't1' };

describe('evaluatePolicy', () => {
  it.each<[string, IamPolicy, IamContext, string, string, boolean]>([
    ['no statement applies: implicit deny', policy(), {}, 'secretsmanager:GetSecretValue', ARN, false],
    ['action and resource patterns match', policy(allow()), {}, 'secretsmanager:GetSecretValue', ARN, true],
    ['actions compare case-insensitively', policy(allow({ Action: 'SecretsManager:getsecret*' })), {}, 'secretsmanager:GetSecretValue', ARN, true],
    ['another action is not granted', policy(allow()), {}, 'secretsmanager:PutSecretValue', ARN, false],
    ['a resource outside the pattern is not granted', policy(allow()), {}, 'secretsmanager:GetSecretValue', 'arn:aws:secretsmanager:eu-west-1:0:secret:other/x', false],
    ['an explicit Deny beats an Allow', policy(allow(), { Effect: 'Deny', Action: 'secretsmanager:*', Resource: '*' }), {}, 'secretsmanager:GetSecretValue', ARN, false],
    ['NotAction allows everything else', policy(allow({ Action: undefined, NotAction: 'secretsmanager:DeleteSecret' })), {}, 'secretsmanager:GetSecretValue', ARN, true],
    ['Null false needs the key present', policy(allow({ Condition: { Null: { 'secretsmanager:ResourceTag/tenant-id': 'false' } } })), {}, 'secretsmanager:GetSecretValue', ARN, false],
    ['Null false with the tag', policy(allow({ Condition: { Null: { 'secretsmanager:ResourceTag/tenant-id': 'false' } } })), tagged, 'secretsmanager:GetSecretValue', ARN, true],
    ['Null true with the key absent', policy(allow({ Condition: { Null: { 'aws:ResourceTag/x': 'true' } } })), {}, 'secretsmanager:GetSecretValue', ARN, true],
    ['StringLike without the key fails', policy(allow({ Condition: { StringLike: { 'secretsmanager:ResourceTag/tenant-id': '?*' } } })), {}, 'secretsmanager:GetSecretValue', ARN, false],
    [
      'StringLikeIfExists without the key passes',
      policy(allow({ Condition: { StringLikeIfExists: { 'secretsmanager:ResourceTag/tenant-id': '?*' } } })),
      {},
      'secretsmanager:GetSecretValue',
      ARN,
      true,
    ],
    [
      'StringLikeIfExists with an empty value fails',
      policy(allow({ Condition: { StringLikeIfExists: { 'secretsmanager:ResourceTag/tenant-id': '?*' } } })),
      { 'secretsmanager:ResourceTag/tenant-id': '' },
      'secretsmanager:GetSecretValue',
      ARN,
      false,
    ],
    [
      'StringEquals, any listed value',
      policy(allow({ Condition: { StringEquals: { 'aws:RequestTag/tenant-id': ['a', 't1'] } } })),
      { 'aws:RequestTag/tenant-id': 't1' },
      'secretsmanager:GetSecretValue',
      ARN,
      true,
    ],
    [
      'StringNotEquals, none of the values',
      policy(allow({ Condition: { StringNotEquals: { 'aws:RequestTag/tenant-id': ['a', 't1'] } } })),
      { 'aws:RequestTag/tenant-id': 't1' },
      'secretsmanager:GetSecretValue',
      ARN,
      false,
    ],
    [
      'condition key names ignore case, tag keys do not',
      policy(allow({ Condition: { StringEquals: { 'SecretsManager:ResourceTag/Tenant-Id': 't1' } } })),
      tagged,
      'secretsmanager:GetSecretValue',
      ARN,
      false,
    ],
    [
      'ForAllValues: every request tag key is listed',
      policy(allow({ Condition: { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['tenant-id'] } } })),
      { 'aws:TagKeys': ['tenant-id', 'owner'] },
      'secretsmanager:GetSecretValue',
      ARN,
      false,
    ],
    ['ForAllValues over no tags is true (AWS)', policy(allow({ Condition: { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['tenant-id'] } } })), {}, 'secretsmanager:GetSecretValue', ARN, true],
    ['ForAnyValue over no tags is false', policy(allow({ Condition: { 'ForAnyValue:StringEquals': { 'aws:TagKeys': ['tenant-id'] } } })), {}, 'secretsmanager:GetSecretValue', ARN, false],
    [
      'ForAnyValue: one listed key is enough',
      policy(allow({ Condition: { 'ForAnyValue:StringEquals': { 'aws:TagKeys': ['tenant-id'] } } })),
      { 'aws:TagKeys': ['owner', 'tenant-id'] },
      'secretsmanager:GetSecretValue',
      ARN,
      true,
    ],
    [
      'operators AND together',
      policy(allow({ Condition: { StringLike: { 'aws:RequestTag/tenant-id': '?*' }, Null: { 'aws:ResourceTag/tenant-id': 'true' } } })),
      { 'aws:RequestTag/tenant-id': 't', 'aws:ResourceTag/tenant-id': 't' },
      'secretsmanager:GetSecretValue',
      ARN,
      false,
    ],
    ['BoolIfExists absent passes', policy(allow({ Condition: { BoolIfExists: { 'secretsmanager:ForceDeleteWithoutRecovery': 'false' } } })), {}, 'secretsmanager:GetSecretValue', ARN, true],
    ['Bool absent fails', policy(allow({ Condition: { Bool: { 'secretsmanager:ForceDeleteWithoutRecovery': 'false' } } })), {}, 'secretsmanager:GetSecretValue', ARN, false],
    [
      'Bool true against false fails',
      policy(allow({ Condition: { BoolIfExists: { 'secretsmanager:ForceDeleteWithoutRecovery': 'false' } } })),
      { 'secretsmanager:ForceDeleteWithoutRecovery': 'true' },
      'secretsmanager:GetSecretValue',
      ARN,
      false,
    ],
    [
      'NumericGreaterThanEquals',
      policy(allow({ Condition: { NumericGreaterThanEquals: { 'secretsmanager:RecoveryWindowInDays': '7' } } })),
      { 'secretsmanager:RecoveryWindowInDays': '6' },
      'secretsmanager:GetSecretValue',
      ARN,
      false,
    ],
  ])('%s', (_title, p, context, action, resource, allowed) => {
    expect(run(p, context, action, resource).allowed).toBe(allowed);
  });

  it('throws on an operator it does not model, so such a policy cannot pass by accident', () => {
    expect(() => run(policy(allow({ Condition: { DateGreaterThan: { 'aws:CurrentTime': '2020-01-01T00:00:00Z' } } })))).toThrow(/Unknown IAM condition operator/);
  });
});
