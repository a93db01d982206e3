// What `@nestjs/throttler` resolves to under jest (jest.config.js moduleNameMapper); the hub
// itself imports the real package, which Node loads natively (CommonJS from ESM, and its
// require() of the ESM-only @nestjs/common through require(esm), Node ≥ 20.19).
//
// Jest cannot do the same: it runs the package's CommonJS through its own require(), which
// refuses ESM before Node 24.9 ("Must use import to load ES Module") and, on 24.9+, refuses
// @nestjs/common when it sits in the same import graph as the throttler ("Cannot require() ES
// Module … in a cycle"). Transforming the package does not help (it stays CommonJS to jest),
// and loading it through Node's own require would bring a second @nestjs/common and
// @nestjs/core, in another realm, whose decorators Nest here would not see.
//
// So this module evaluates the package's compiled files itself, handing its require() the
// @nestjs/common and @nestjs/core this test already imported: one instance of each, the same
// on every Node line.
import * as nestCommon from '@nestjs/common';
import * as nestCore from '@nestjs/core';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

type Throttler = typeof import('@nestjs/throttler');

const jestRequire = createRequire(import.meta.url);
const ESM_ONLY: Record<string, unknown> = { '@nestjs/common': nestCommon, '@nestjs/core': nestCore };
const dist = join(dirname(jestRequire.resolve('@nestjs/throttler/package.json')), 'dist');
const loaded = new Map<string, { exports: unknown }>();

function load(file: string): unknown {
  const cached = loaded.get(file);
  if (cached) return cached.exports;
  const module = { exports: {} };
  loaded.set(file, module); // before running it, as Node does, so require cycles see partial exports
  const require = (id: string): unknown =>
    id.startsWith('.') ? load(join(dirname(file), `${id}.js`)) : (ESM_ONLY[id] ?? jestRequire(id));
  // A function of this realm (jest's test context), as Node's CommonJS wrapper would be.
  const wrapper = new Function('exports', 'require', 'module', readFileSync(file, 'utf8'));
  wrapper(module.exports, require, module);
  return module.exports;
}

const throttler = load(join(dist, 'index.js')) as Throttler;

export const {
  getOptionsToken,
  getStorageToken,
  DEFAULT_IPV6_SUBNET_PREFIX,
  normalizeIp,
  ThrottlerStorage,
  Throttle,
  SkipThrottle,
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  throttlerMessage,
  ThrottlerException,
  ThrottlerGuard,
  ThrottlerModule,
  DEFAULT_SWEEP_INTERVAL,
  ThrottlerStorageService,
  seconds,
  minutes,
  hours,
  days,
  weeks,
} = throttler;
