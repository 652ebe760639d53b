/** The movies feature: its service, CRUD class, CSV dialect and the types they exchange. */
export { MovieCRUD, escapeLike } from './crud.js';
export {
  CSV_HEADER,
  CsvError,
  checkHeader,
  csvLine,
  csvLines,
  csvRecords,
  movieFromRecord,
  movieRows,
} from './csv.js';
export type { CsvRecord } from './csv.js';
export { decodeCursor, encodeCursor } from './cursor.js';
export { MovieService } from './service.js';
export * from './types.js';
export { moviesDefinition } from './definition.js';
