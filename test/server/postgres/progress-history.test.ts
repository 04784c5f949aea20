/**
 * The progress history's cases (support/progress-history-cases.ts) on a real PostgreSQL 15: the
 * multi-row insert, the thinning and the cascade as PostgreSQL reads them.
 */
import { migratedHandle, usePgCluster } from '../../helpers/postgres.js';
import { progressHistoryCases } from '../support/progress-history-cases.js';

const cluster = usePgCluster();
let databases = 0;

progressHistoryCases('PostgreSQL', async () => (await migratedHandle(cluster, `history_${++databases}`)).asDb());
