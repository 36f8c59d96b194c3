import { SetMetadata } from '@nestjs/common';
import { CallerKind } from './caller';

export const ALLOWED_CALLERS = 'keyward:allowed-callers';

/** Which kinds of caller a route admits. Routes without it admit service tokens only. */
export const AllowedCallers = (...kinds: CallerKind[]) => SetMetadata(ALLOWED_CALLERS, kinds);
