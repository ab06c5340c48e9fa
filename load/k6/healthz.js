// Liveness endpoint load test: GET /healthz must stay fast and never fail.
//
// Run (any of):
//   k6 run load/k6/healthz.js
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e VUS=20 -e DURATION=1m load/k6/healthz.js
//   docker run --rm -i --network host grafana/k6 run - < load/k6/healthz.js
// Save results: add `--summary-export results/healthz.json` or `--out json=results/healthz.json`
// (create `results/` first: k6 does not create folders).
//
// Environment: BASE_URL (http://localhost:8080), VUS (5), DURATION (10s),
// SLEEP seconds between iterations per VU (0), P95_MS threshold (100).
// Self-contained on purpose (no imports of local files) so it runs from stdin.
import http from 'k6/http';
import { check, sleep } from 'k6';

const BASE_URL = (__ENV.BASE_URL || 'http://localhost:8080').replace(/\/+$/, '');
const VUS = parseInt(__ENV.VUS || '5', 10);
const DURATION = __ENV.DURATION || '10s';
const SLEEP = parseFloat(__ENV.SLEEP || '0');
const P95_MS = parseFloat(__ENV.P95_MS || '100');

export const options = {
  scenarios: {
    healthz: {
      executor: 'constant-vus',
      vus: VUS,
      duration: DURATION,
      gracefulStop: '5s',
    },
  },
  thresholds: {
    'http_req_failed{scenario:healthz}': ['rate<0.01'],
    'http_req_duration{scenario:healthz}': [`p(95)<${P95_MS}`],
    checks: ['rate>0.99'],
  },
};

export default function () {
  const res = http.get(`${BASE_URL}/healthz`, { tags: { name: 'GET /healthz' } });
  check(res, {
    'status is 200': (r) => r.status === 200,
    'has Trace-Id header': (r) => !!r.headers['Trace-Id'],
    'body is {"ok": true}': (r) => {
      try {
        return r.json('ok') === true;
      } catch (e) {
        return false;
      }
    },
  });
  if (SLEEP > 0) {
    sleep(SLEEP);
  }
}
