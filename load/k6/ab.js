// A/B stickiness load test: every VU is one client with its own cookie jar; the variant the
// server assigns on the first request must hold for all of that VU's later requests.
//
// Run (any of):
//   k6 run -e BASE_URL=http://127.0.0.1:8080 load/k6/ab.js
//   docker run --rm -i --network host grafana/k6 run - < load/k6/ab.js
// Save results: add `--summary-export results/ab.json` or `--out json=results/ab.json`
// (create `results/` first: k6 does not create folders). In the JSON output every request
// after a VU's first carries a `variant` tag, so latency and errors can be split per variant.
//
// Needs a server with STICKY_COOKIE=true (the default) and both weights > 0 to see both
// variants, e.g. AB_WEIGHT_B=0.5. Changing weights during the run may move clients on purpose,
// which this script then reports as broken stickiness.
//
// Environment: BASE_URL (http://localhost:8080), VUS (5), DURATION (10s), IMG_SIZE (64),
// TOP_K (3), SLEEP seconds between iterations per VU (0.1), P95_MS threshold (500),
// STICKY_COOKIE_NAME (edgeserve_ab).
// Self-contained on purpose (payloads embedded, no open()) so it runs from stdin.
import http from 'k6/http';
import exec from 'k6/execution';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

const BASE_URL = (__ENV.BASE_URL || 'http://localhost:8080').replace(/\/+$/, '');
const VUS = parseInt(__ENV.VUS || '5', 10);
const DURATION = __ENV.DURATION || '10s';
const IMG_SIZE = parseInt(__ENV.IMG_SIZE || '64', 10);
const TOP_K = parseInt(__ENV.TOP_K || '3', 10);
const SLEEP = parseFloat(__ENV.SLEEP || '0.1');
const P95_MS = parseFloat(__ENV.P95_MS || '500');
const COOKIE_NAME = __ENV.STICKY_COOKIE_NAME || 'edgeserve_ab';

// 64x64 solid-colour RGB PNGs (made with Pillow); the demo models classify dominant colour.
const IMAGES = [
  'iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAAUElEQVR42u3PQREAAAQAMGTQP5kwUni42xospzs+q3hOQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBA4N4CQ5MBhMgt2OkAAAAASUVORK5CYII=',
  'iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAAUklEQVR42u3PMQ0AMAgAMJgGROBfBbKmgoOkddCs6bjsxXECAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC+z5CtwGEjEJUGQAAAABJRU5ErkJggg==',
  'iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAAUklEQVR42u3PMQ0AMAgAMJgGROBfD2KmgoOkddCsnrjsxXECAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC+z4HFwGY5WYAdAAAAABJRU5ErkJggg==',
];
const BODIES = IMAGES.map((b64) =>
  JSON.stringify({ image_b64: b64, img_size: IMG_SIZE, top_k: TOP_K }),
);
const PARAMS = {
  headers: { 'Content-Type': 'application/json' },
  tags: { name: 'POST /v1/infer' },
};

const abLatency = new Trend('ab_latency_ms', true);
const abRequests = new Counter('ab_requests');
const abClients = new Counter('ab_clients');
const abSticky = new Rate('ab_sticky');

export const options = {
  // Keep each VU's cookie jar across iterations: a VU is one returning client.
  noCookiesReset: true,
  scenarios: {
    ab: {
      executor: 'constant-vus',
      vus: VUS,
      duration: DURATION,
      gracefulStop: '10s',
    },
  },
  thresholds: {
    'http_req_failed{scenario:ab}': ['rate<0.01'],
    'http_req_duration{scenario:ab}': [`p(95)<${P95_MS}`],
    checks: ['rate>0.99'],
    ab_sticky: ['rate==1'],
    // Sub-metrics per variant so the end-of-test summary shows A and B side by side.
    'ab_latency_ms{variant:A}': [`p(95)<${P95_MS}`],
    'ab_latency_ms{variant:B}': [`p(95)<${P95_MS}`],
    'ab_requests{variant:A}': ['count>=0'],
    'ab_requests{variant:B}': ['count>=0'],
    'ab_clients{variant:A}': ['count>=0'],
    'ab_clients{variant:B}': ['count>=0'],
  },
};

// Per-VU state: each VU runs its own copy of this module.
let assigned = null;

export default function () {
  const res = http.post(`${BASE_URL}/v1/infer`, BODIES[__ITER % BODIES.length], PARAMS);
  const variant = res.headers['X-Edgeserve-Variant'] || 'none';
  const known = variant === 'A' || variant === 'B';
  if (assigned === null && res.status === 200 && known) {
    assigned = variant;
    // From now on every metric this VU emits (http_req_* included) carries the variant tag.
    exec.vu.metrics.tags.variant = variant;
    abClients.add(1, { variant });
  }
  const sticky = assigned !== null && variant === assigned;
  const cookies = http.cookieJar().cookiesForURL(BASE_URL)[COOKIE_NAME] || [];
  check(res, {
    'status is 200': (r) => r.status === 200,
    'has Trace-Id header': (r) => !!r.headers['Trace-Id'],
    'has X-Edgeserve-Variant A or B': () => known,
    [`has ${COOKIE_NAME} cookie`]: () => cookies.length > 0 && cookies[0] !== '',
    'variant is sticky for this client': () => sticky,
  });
  abSticky.add(sticky, { variant });
  abLatency.add(res.timings.duration, { variant });
  abRequests.add(1, { variant });
  if (SLEEP > 0) {
    sleep(SLEEP);
  }
}
