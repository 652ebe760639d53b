// The embedded database's lock and socket names, for importers written before src/backend/database/.
export {
  DatabaseInUseError,
  acquireLock,
  readLockHolder,
  socketDirFor,
  socketPath,
  type LockHolder,
} from './database/embedded.js';
