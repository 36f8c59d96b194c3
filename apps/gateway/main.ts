import { startService } from '@keyward/bootstrap';
import { gatewayService } from './gateway.definition';
import { GATEWAY } from './gateway-identity';

void startService(GATEWAY.name, () => gatewayService());
