import { startService } from '@keyward/bootstrap';
import { MonitorModule } from './monitor.module';

void startService('monitor', () => ({ module: MonitorModule, consumes: 'monitor' }));
