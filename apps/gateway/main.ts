import { startService } from '@keyward/bootstrap';
import { gatewayService } from './gateway.definition';

void startService('gateway', () => gatewayService());
