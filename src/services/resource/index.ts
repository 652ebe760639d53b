/** The base classes of a generated resource: its CRUD class, its service and their shapes. */
export { ResourceCRUD } from './crud.js';
export { decodeIdCursor, encodeIdCursor } from './cursor.js';
export { ResourceService } from './service.js';
export * from './types.js';
