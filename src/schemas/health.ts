/** TypeBox schemas of the liveness and readiness probes. */
import { Type } from 'typebox';

export const HealthSchema = Type.Object({ status: Type.Literal('ok') });
export const ReadySchema = Type.Object({
  status: Type.Literal('ready'),
  database: Type.Literal('ok'),
});
