// An HTTP backend rate-limited by quota-authority: every request is checked with CheckLimit
// (counted per client IP); an admitted one gets the IETF RateLimit-Policy and RateLimit header
// fields, a denied one a 429 with Retry-After.
//
//   QUOTA_ADDRESS  the quota server (default 127.0.0.1:50051)
//   QUOTA_TOKEN    its token; an admin token also creates the demo rule
//   PORT           HTTP port (default 8080; 0 picks a free one)
//
//   node clients/typescript/examples/http-backend.mjs               serve until Ctrl-C
//   node clients/typescript/examples/http-backend.mjs --self-test   call itself, print, exit
//
// --self-test (or SELF_TEST=1) makes SELF_TEST_REQUESTS requests (default 7) to itself, prints
// each status and the rate-limit fields, and exits 0 once one was answered 429.
//
// The demo rule (http-backend-example, 5 per 10 s per IP) is a rule of the whole server: a
// rule keys on one scope, so it cannot be kept to this example's route, and while the example
// runs it counts every CheckLimit call that carries an IP. Run it against a development
// server. It deletes the rule when it stops (Ctrl-C, SIGTERM, the end of --self-test); if it
// is killed outright, delete the rule with DeleteRateLimitRule.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import {
  connect,
  QuotaPermissionDeniedError,
  QuotaUnauthenticatedError,
  RateLimitRule,
  Scope,
  withRateLimit,
} from '@quota-authority/client';

const address = process.env.QUOTA_ADDRESS || '127.0.0.1:50051';
const token = process.env.QUOTA_TOKEN || undefined;
const selfTest =
  process.argv.includes('--self-test') || ['1', 'true'].includes(process.env.SELF_TEST);
const port = Number(process.env.PORT ?? (selfTest ? 0 : 8080));
const requests = Number(process.env.SELF_TEST_REQUESTS || 7);

const RULE = 'http-backend-example';
const LIMIT = 5;
const WINDOW_S = 10;

const quota = connect({ address, token });

const createdRule = await createDemoRule();
let stopping;

const server = createServer(
  withRateLimit(hello, {
    client: quota,
    // The decision may take this long. Only an unreachable quota service is admitted without
    // one (fail-open); its backlog is answered 503, any other failure 500.
    deadlineMs: 1000,
    // Made here, one per request, so that a retry is counted once. Never a client's header: a
    // client replaying one id would get its first answer (allowed) for 24 h.
    requestId: () => randomUUID(),
    onError: (err) => console.error(`quota-authority did not decide: ${err.message}`),
  }),
);
try {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
} catch (err) {
  console.error(`Cannot listen on port ${port}: ${err.message}`);
  await stop();
  process.exit(1);
}
const url = `http://127.0.0.1:${server.address().port}/hello`;
// Before anything is printed: a stop that follows the first line must find them.
if (!selfTest) for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => void stop());

console.log(`Serving ${url}, rate-limited by quota-authority at ${address}.`);
console.log('Call it (the 6th call within 10 s is answered 429):');
console.log(`  curl -i ${url}`);
console.log(`  for i in 1 2 3 4 5 6 7; do curl -s -o /dev/null -w '%{http_code}\\n' ${url}; done`);

if (selfTest) {
  const sawDenial = await callSelf(url, requests);
  await stop();
  if (!sawDenial) {
    console.error(`self-test: no 429 in ${requests} requests (is the ${RULE} rule there?)`);
    process.exit(1);
  }
  console.log('self-test: ok');
}

/** The backend's one route. */
function hello(req, res) {
  res.setHeader('Content-Type', 'application/json');
  res.end(`${JSON.stringify({ hello: 'world', path: req.url })}\n`);
}

/** 5 requests per 10 s per client IP, if the token may create rules; true when it did. */
async function createDemoRule() {
  try {
    await quota.admin.upsertRateLimitRule({
      rule: RateLimitRule.fromPartial({
        name: RULE,
        scope: Scope.SCOPE_IP,
        match: '*',
        limit: LIMIT,
        window: { seconds: WINDOW_S, nanos: 0 },
        description: 'clients/typescript/examples/http-backend.mjs: every IP, 5 per 10 s',
      }),
    });
    console.log(`Rule ${RULE}: ${LIMIT} requests per ${WINDOW_S} s per client IP.`);
    console.log(`(It applies to every IP on that server until this example stops.)`);
    return true;
  } catch (err) {
    if (err instanceof QuotaPermissionDeniedError)
      console.log('QUOTA_TOKEN is not an admin token: using the rules already on the server.');
    else if (err instanceof QuotaUnauthenticatedError)
      console.error('QUOTA_TOKEN is missing or unknown: every check fails, answered 500.');
    else console.error(`Could not create the demo rule: ${err.message}`);
    return false;
  }
}

/** Calls `target` `n` times; true when one answer was 429. */
async function callSelf(target, n) {
  let sawDenial = false;
  for (let i = 1; i <= n; i++) {
    const res = await fetch(target);
    await res.arrayBuffer();
    console.log(`#${i} ${res.status}`);
    for (const name of ['RateLimit-Policy', 'RateLimit', 'Retry-After']) {
      const value = res.headers.get(name);
      if (value !== null) console.log(`   ${name}: ${value}`);
    }
    if (res.status === 429) sawDenial = true;
  }
  return sawDenial;
}

/** Stops serving and deletes the demo rule, which would otherwise count every IP. Once. */
function stop() {
  stopping ??= stopOnce();
  return stopping;
}

async function stopOnce() {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  if (createdRule) {
    try {
      await quota.admin.deleteRateLimitRule({ name: RULE });
      console.log(`Rule ${RULE} deleted.`);
    } catch (err) {
      console.error(`Could not delete rule ${RULE}: ${err.message}`);
    }
  }
  quota.close();
}
