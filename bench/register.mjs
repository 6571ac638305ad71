/**
 * `node --import ./bench/register.mjs bench/x.ts`: runs the TypeScript benches straight from source, with the
 * @swc/core that jest already uses (a devDependency, so it works after `npm ci`; tsx is not installed). The hooks
 * live in ts-hooks.mjs because module.register() runs them on a separate loader thread.
 */
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
