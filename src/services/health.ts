/** HealthService: the readiness probe, which is reaching the database. */
import type { Database } from '../backend/database.js';
import { DatabaseUnavailableError } from '../backend/database.js';
import { ServiceUnavailableError } from '../exc.js';

/** Readiness: whether this process can do its work now, which means reaching its database. */
export class HealthService {
  constructor(private readonly database: Database) {}

  async checkReady(): Promise<void> {
    try {
      await this.database.ping();
    } catch (error) {
      throw new ServiceUnavailableError(
        'Database unavailable',
        new DatabaseUnavailableError(this.database.label, error),
      );
    }
  }
}
