import { startService } from '@keyward/bootstrap';
import { monitorDefinition } from './monitor.definition';

void startService('monitor', () => monitorDefinition());
