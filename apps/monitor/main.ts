import { startService } from '@keyward/bootstrap';
import { monitorDefinition } from './monitor.definition';
import { MONITOR } from './monitor-identity';

void startService(MONITOR.name, () => monitorDefinition());
