// Stress test, the original's: ramp to 100 virtual users reading the event list through
// the gateway, each pausing about a second between requests. The original published
// ~64 requests/s, p95 < 3 ms and 0 % errors at 100 users for this shape of load.
//
//   k6 run --local-ips 127.0.1.1-127.0.8.254 k6/stress_test.js   (BASE_URL=http://localhost:8080)
//
// Every user comes from its own loopback address (--local-ips), as real users do, so the
// gateway's per-address limit (10 r/s, burst 20) stays on and is never the bottleneck.
// Thresholds: p95 < 500 ms and fewer than 1 % failed requests.
import http from 'k6/http';
import { check, sleep } from 'k6';

const BASE_URL = __ENV.BASE_URL || 'http://localhost:8080';

export const options = {
  stages: [
    { duration: '15s', target: 50 },
    { duration: '15s', target: 100 },
    { duration: '30s', target: 100 },
    { duration: '10s', target: 0 },
  ],
  thresholds: {
    http_req_duration: ['p(95)<500'],
    http_req_failed: ['rate<0.01'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
};

http.setResponseCallback(http.expectedStatuses(200));

export default function () {
  const response = http.get(`${BASE_URL}/api/events`, { tags: { name: 'GET /api/events' } });
  check(response, {
    'status is 200': (r) => r.status === 200,
    'body is an event list': (r) => r.status === 200 && Array.isArray(r.json()),
  });
  sleep(1 + Math.random() * 0.5);
}
