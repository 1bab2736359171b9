#!/usr/bin/env node
// Evaluates one flag with LaunchDarkly's unmodified Node server SDK against a
// Big Segments Redis, so that tests can prove the layout cohortsync writes is the
// one real SDKs read. Nothing here re-implements SDK logic: the flag and segment
// are handed to the SDK's own file data source and the membership comes from the
// SDK's own RedisBigSegmentStore.
//
// Input: one JSON object, as the last argument or on stdin:
//   {redisUrl, prefix, flagKey?, segmentKey, generation, contextKind,
//    contextKeys: [...], staleAfterSeconds, statusPollIntervalSeconds?}
// Output: one JSON line per context key, in input order:
//   {"key", "value", "variationIndex", "bigSegmentsStatus", "reason"}
// With --print-flag-data first, it prints the flag data it would give the SDK
// and exits: the Go side checks that both SDKs it tests get the same document.
// Exit codes: 0 ok, 2 bad request, 3 SDK not initialised in time, 1 anything else.
// Diagnostics go to stderr; stdout carries only the result lines.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

const INIT_TIMEOUT_SECONDS = 10;
// Redis commands and connects are bounded so that an unreachable Redis shows as
// STORE_ERROR within seconds instead of ioredis' default of retrying forever.
const REDIS_CONNECT_TIMEOUT_MS = 2000;
const REDIS_COMMAND_TIMEOUT_MS = 5000;
const REDIS_MAX_RECONNECTS = 3;
// Evaluations in flight at once: enough to hide Redis latency for large key
// lists, below the SDK's default membership cache size (1000) so no entry is
// evicted while its evaluation is still running.
const CONCURRENCY = 64;
// ioredis keeps its connect-timeout timer (REDIS_CONNECT_TIMEOUT_MS) alive when
// quit comes before the connection is ready, as when generation 0 means Redis
// is never read: once the results are flushed, exit instead of waiting for it.
const EXIT_GRACE_MS = 300;

const EXIT_BAD_REQUEST = 2;
const EXIT_INIT = 3;

class UsageError extends Error {}

function fail(code, msg) {
  process.stderr.write(`evaluate.js: error: ${msg}\n`);
  process.exitCode = code;
}

function parseArgs() {
  const args = process.argv.slice(2);
  const printFlagData = args[0] === '--print-flag-data';
  if (printFlagData) args.shift();
  if (args.length > 1) {
    throw new UsageError(`usage: evaluate.js [--print-flag-data] [REQUEST_JSON]; got ${args.length} request arguments`);
  }
  if (args.length === 1 && args[0].startsWith('--')) {
    throw new UsageError(`unknown option ${args[0]}`);
  }
  return { printFlagData, text: args.length === 1 ? args[0] : fs.readFileSync(0, 'utf8') };
}

// Context kinds as LaunchDarkly defines them; "kind" and "multi" are reserved.
const KIND_RE = /^[A-Za-z0-9._-]+$/;

function parseRequest(text) {
  let req;
  try {
    req = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`request is not valid JSON: ${e.message}`);
  }
  if (req === null || typeof req !== 'object' || Array.isArray(req)) {
    throw new UsageError('request must be a JSON object');
  }
  const known = new Set(['redisUrl', 'prefix', 'flagKey', 'segmentKey', 'generation', 'contextKind',
    'contextKeys', 'staleAfterSeconds', 'statusPollIntervalSeconds']);
  for (const k of Object.keys(req)) {
    if (!known.has(k)) throw new UsageError(`request.${k}: unknown field`);
  }
  const str = (name, { optional = false } = {}) => {
    const v = req[name];
    if (v === undefined && optional) return undefined;
    if (typeof v !== 'string' || v === '') throw new UsageError(`request.${name}: must be a non-empty string`);
    return v;
  };
  const num = (name, { optional = false, min, integer = false }) => {
    const v = req[name];
    if (v === undefined && optional) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min) {
      throw new UsageError(`request.${name}: must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const out = {
    redisUrl: str('redisUrl'),
    prefix: str('prefix'),
    flagKey: str('flagKey', { optional: true }) || 'cohortsync-sdkcompat',
    segmentKey: str('segmentKey'),
    // 0 is allowed on purpose: the SDK reports NOT_CONFIGURED for it, and tests pin that.
    generation: num('generation', { min: 0, integer: true }),
    contextKind: str('contextKind'),
    staleAfterSeconds: num('staleAfterSeconds', { min: 0.001 }),
    statusPollIntervalSeconds: num('statusPollIntervalSeconds', { optional: true, min: 0.001 }),
    contextKeys: req.contextKeys,
  };
  if (!KIND_RE.test(out.contextKind) || out.contextKind === 'kind' || out.contextKind === 'multi') {
    throw new UsageError(`request.contextKind: ${JSON.stringify(out.contextKind)} is not a valid context kind`);
  }
  if (!Array.isArray(out.contextKeys) || out.contextKeys.length === 0) {
    throw new UsageError('request.contextKeys: must be a non-empty array of strings');
  }
  out.contextKeys.forEach((k, i) => {
    if (typeof k !== 'string' || k === '') {
      throw new UsageError(`request.contextKeys[${i}]: must be a non-empty string, got ${JSON.stringify(k)}`);
    }
  });
  out.redisOpts = redisOptions(out.redisUrl);
  return out;
}

// ioredis would accept the URL itself, but LDRedisOptions.redisOpts is typed as
// options; parsing here also rejects what ioredis would silently misread.
function redisOptions(raw) {
  let u;
  try {
    u = new URL(raw);
  } catch (e) {
    throw new UsageError(`request.redisUrl: ${JSON.stringify(raw)} is not a URL`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new UsageError(`request.redisUrl: scheme must be redis or rediss, got ${JSON.stringify(u.protocol)}`);
  }
  if (!u.hostname) throw new UsageError('request.redisUrl: host missing');
  const port = u.port === '' ? 6379 : Number(u.port);
  let db = 0;
  const p = u.pathname.replace(/^\//, '');
  if (p !== '') {
    if (!/^\d+$/.test(p)) throw new UsageError(`request.redisUrl: database ${JSON.stringify(p)} is not a number`);
    db = Number(p);
  }
  const opts = {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    db,
    connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => (times > REDIS_MAX_RECONNECTS ? null : 100 * times),
  };
  if (u.username) opts.username = decodeURIComponent(u.username);
  if (u.password) opts.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') opts.tls = {};
  return opts;
}

// The file data source reads the same shape LaunchDarkly serves: top-level
// "flags" and "segments" keyed by key. The rule only matches through the
// segment, so value true means "Redis says included".
function flagData(req) {
  return {
    flags: {
      [req.flagKey]: {
        key: req.flagKey,
        version: 1,
        on: true,
        salt: 'cohortsync-sdkcompat',
        variations: [false, true],
        offVariation: 0,
        fallthrough: { variation: 0 },
        targets: [],
        contextTargets: [],
        prerequisites: [],
        rules: [{
          id: 'in-segment',
          variation: 1,
          clauses: [{ attribute: 'key', op: 'segmentMatch', values: [req.segmentKey], negate: false }],
          trackEvents: false,
        }],
        trackEvents: false,
        trackEventsFallthrough: false,
      },
    },
    segments: {
      [req.segmentKey]: {
        key: req.segmentKey,
        version: 1,
        unbounded: true,
        unboundedContextKind: req.contextKind,
        generation: req.generation,
        included: [],
        excluded: [],
        includedContexts: [],
        excludedContexts: [],
        rules: [],
        salt: 'cohortsync-sdkcompat',
      },
    },
  };
}

function loadSdk() {
  try {
    return {
      ld: require('@launchdarkly/node-server-sdk'),
      redis: require('@launchdarkly/node-server-sdk-redis'),
    };
  } catch (e) {
    throw new Error(`cannot load the LaunchDarkly SDK (${e.message}); run npm ci --prefix sdkcompat/node (scripts/test.sh does)`);
  }
}

async function evaluateAll(client, req) {
  const lines = new Array(req.contextKeys.length);
  for (let start = 0; start < req.contextKeys.length; start += CONCURRENCY) {
    const chunk = req.contextKeys.slice(start, start + CONCURRENCY);
    const details = await Promise.all(chunk.map((key) =>
      client.variationDetail(req.flagKey, { kind: req.contextKind, key }, false)));
    details.forEach((d, i) => {
      const reason = d.reason || {};
      lines[start + i] = JSON.stringify({
        key: chunk[i],
        value: d.value,
        variationIndex: d.variationIndex === undefined ? null : d.variationIndex,
        bigSegmentsStatus: reason.bigSegmentsStatus === undefined ? null : reason.bigSegmentsStatus,
        reason,
      });
    });
  }
  return lines;
}

function writeOut(text) {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (err) => (err ? reject(err) : resolve()));
  });
}

async function main() {
  let req;
  let printFlagData;
  try {
    const args = parseArgs();
    printFlagData = args.printFlagData;
    req = parseRequest(args.text);
  } catch (e) {
    fail(e instanceof UsageError ? EXIT_BAD_REQUEST : 1, e.message);
    return;
  }
  if (printFlagData) {
    await writeOut(`${JSON.stringify(flagData(req), null, 2)}\n`);
    return;
  }
  const { ld, redis } = loadSdk();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cohortsync-sdkcompat-'));
  let client;
  try {
    const dataFile = path.join(dir, 'flags.json');
    fs.writeFileSync(dataFile, JSON.stringify(flagData(req)));
    const bigSegments = {
      store: redis.RedisBigSegmentStore({ redisOpts: req.redisOpts, prefix: req.prefix }),
      staleAfter: req.staleAfterSeconds,
      // The SDK caches membership per context; 1 s is its smallest useful
      // setting (0 means "default", 5 s). One process evaluates each key once.
      userCacheTime: 1,
    };
    if (req.statusPollIntervalSeconds !== undefined) {
      bigSegments.statusPollInterval = req.statusPollIntervalSeconds;
    }
    client = ld.init('sdk-cohortsync-sdkcompat-offline', {
      updateProcessor: new ld.integrations.FileDataSourceFactory({ paths: [dataFile], autoUpdate: false }).getFactory(),
      sendEvents: false,
      diagnosticOptOut: true,
      bigSegments,
      logger: ld.basicLogger({ level: 'warn', destination: (line) => process.stderr.write(`${line}\n`) }),
    });
    try {
      await client.waitForInitialization({ timeout: INIT_TIMEOUT_SECONDS });
    } catch (e) {
      fail(EXIT_INIT, `LaunchDarkly SDK did not initialise within ${INIT_TIMEOUT_SECONDS}s: ${e.message}`);
      return;
    }
    const lines = await evaluateAll(client, req);
    await writeOut(lines.join('\n') + '\n');
  } finally {
    if (client) client.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main()
  .catch((e) => fail(1, e && e.stack ? e.stack : String(e)))
  .finally(() => {
    setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
  });
