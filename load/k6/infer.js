// Inference load test: POST /v1/infer with small solid-colour PNGs, in two scenarios side by
// side: `infer` sends JSON bodies (base64), `infer_binary` sends binary uploads (the PNG file
// as the body, img_size and top_k as query parameters).
//
// Run (any of):
//   k6 run load/k6/infer.js
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e VUS=20 -e DURATION=1m -e SLEEP=0 load/k6/infer.js
//   docker run --rm -i --network host grafana/k6 run - < load/k6/infer.js
// Save results: add `--summary-export results/infer.json` or `--out json=results/infer.json`
// (create `results/` first: k6 does not create folders).
//
// Environment: BASE_URL (http://localhost:8080), VUS (5), DURATION (10s), IMG_SIZE (64),
// TOP_K (3), SLEEP seconds between iterations per VU (0.1), P95_MS threshold (500).
// VUS is per scenario. The default SLEEP keeps 2 x 5 VUs under the server's default
// RATE_LIMIT_RPS (100 per client address); for a throughput test start the server with RATE_LIMIT_RPS=0 and pass SLEEP=0.
// Cookies are reset every iteration (k6 default), so each iteration is a fresh A/B draw;
// the `variant` tag on `infer_latency_ms` / `infer_requests` splits the summary per variant.
// Self-contained on purpose (payloads embedded, no open()) so it runs from stdin.
import http from 'k6/http';
import { check, sleep } from 'k6';
import encoding from 'k6/encoding';
import { Counter, Trend } from 'k6/metrics';

const BASE_URL = (__ENV.BASE_URL || 'http://localhost:8080').replace(/\/+$/, '');
const VUS = parseInt(__ENV.VUS || '5', 10);
const DURATION = __ENV.DURATION || '10s';
const IMG_SIZE = parseInt(__ENV.IMG_SIZE || '64', 10);
const TOP_K = parseInt(__ENV.TOP_K || '3', 10);
const SLEEP = parseFloat(__ENV.SLEEP || '0.1');
const P95_MS = parseFloat(__ENV.P95_MS || '500');

// 64x64 solid-colour RGB PNGs (made with Pillow); the demo models classify dominant colour.
const IMAGES = {
  red: 'iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAAUElEQVR42u3PQREAAAQAMGTQP5kwUni42xospzs+q3hOQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBA4N4CQ5MBhMgt2OkAAAAASUVORK5CYII=',
  green: 'iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAAUklEQVR42u3PMQ0AMAgAMJgGROBfBbKmgoOkddCs6bjsxXECAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC+z5CtwGEjEJUGQAAAABJRU5ErkJggg==',
  blue: 'iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAAUklEQVR42u3PMQ0AMAgAMJgGROBfD2KmgoOkddCsnrjsxXECAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC+z4HFwGY5WYAdAAAAABJRU5ErkJggg==',
};
const COLOURS = Object.keys(IMAGES);
const BODIES = COLOURS.map((colour) =>
  JSON.stringify({ image_b64: IMAGES[colour], img_size: IMG_SIZE, top_k: TOP_K }),
);
const PARAMS = {
  headers: { 'Content-Type': 'application/json' },
  tags: { name: 'POST /v1/infer' },
};
const FILES = COLOURS.map((colour) => encoding.b64decode(IMAGES[colour], 'std'));
const BINARY_URL = `${BASE_URL}/v1/infer?img_size=${IMG_SIZE}&top_k=${TOP_K}`;
const BINARY_PARAMS = {
  headers: { 'Content-Type': 'image/png' },
  tags: { name: 'POST /v1/infer (binary)' },
};

const inferLatency = new Trend('infer_latency_ms', true);
const inferRequests = new Counter('infer_requests');

const SCENARIO = { executor: 'constant-vus', vus: VUS, duration: DURATION, gracefulStop: '10s' };

export const options = {
  scenarios: {
    infer: { ...SCENARIO, exec: 'inferJson' },
    infer_binary: { ...SCENARIO, exec: 'inferBinary' },
  },
  thresholds: {
    'http_req_failed{scenario:infer}': ['rate<0.01'],
    'http_req_duration{scenario:infer}': [`p(95)<${P95_MS}`],
    'http_req_failed{scenario:infer_binary}': ['rate<0.01'],
    'http_req_duration{scenario:infer_binary}': [`p(95)<${P95_MS}`],
    checks: ['rate>0.99'],
    // Sub-metrics per variant so the end-of-test summary shows A and B side by side.
    'infer_latency_ms{variant:A}': [`p(95)<${P95_MS}`],
    'infer_latency_ms{variant:B}': [`p(95)<${P95_MS}`],
    'infer_requests{variant:A}': ['count>=0'],
    'infer_requests{variant:B}': ['count>=0'],
  },
};

function jsonBody(r) {
  try {
    return r.json();
  } catch (e) {
    return null;
  }
}

export function inferJson() {
  const i = (__VU + __ITER) % BODIES.length;
  record(http.post(`${BASE_URL}/v1/infer`, BODIES[i], PARAMS), i);
}

export function inferBinary() {
  const i = (__VU + __ITER) % FILES.length;
  record(http.post(BINARY_URL, FILES[i], BINARY_PARAMS), i);
}

// `k6 run --vus N --duration D` replaces the scenarios above with one that runs this export:
// it alternates the two forms, so that run still loads both.
export default function () {
  if (__ITER % 2 === 0) {
    inferJson();
  } else {
    inferBinary();
  }
}

function record(res, i) {
  const variant = res.headers['X-Edgeserve-Variant'] || 'none';
  const body = jsonBody(res);
  check(res, {
    'status is 200': (r) => r.status === 200,
    'has Trace-Id header': (r) => !!r.headers['Trace-Id'],
    'has X-Edgeserve-Variant A or B': () => variant === 'A' || variant === 'B',
    'body variant matches header': () => !!body && body.variant === variant,
    'has predictions': () =>
      !!body && Array.isArray(body.predictions) && body.predictions.length > 0,
  });
  inferLatency.add(res.timings.duration, { variant, colour: COLOURS[i] });
  inferRequests.add(1, { variant });
  if (SLEEP > 0) {
    sleep(SLEEP);
  }
}
