import { createHash, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { KEYWARD_CONFIG, KeywardConfig, ServiceToken } from '@keyward/config';

/**
 * The service tokens of KEYWARD_SERVICE_TOKENS, held only as SHA-256 hashes. A presented token
 * is hashed and compared with every configured hash in constant time, without stopping early.
 */
@Injectable()
export class ServiceTokens {
  private readonly tokens: ServiceToken[];

  constructor(@Inject(KEYWARD_CONFIG) config: KeywardConfig) {
    this.tokens = config.auth.serviceTokens;
  }

  /** The token's configured name, or undefined when it is not a service token. */
  identify(presented: string): string | undefined {
    const digest = createHash('sha256').update(presented, 'utf8').digest();
    let match: string | undefined;
    for (const token of this.tokens) {
      if (timingSafeEqual(digest, token.sha256) && match === undefined) match = token.name;
    }
    return match;
  }
}
