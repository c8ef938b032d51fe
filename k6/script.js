// Smoke load test, as in the original: ramp to 20 virtual users reading the event list
// through the gateway.   docker compose run --rm k6      (BASE_URL=http://nginx:8080)
//                        k6 run k6/script.js           (BASE_URL=http://localhost:8080)
//
// Every virtual user shares one source address, and the gateway allows 10 requests per
// second per address (burst 20): each user pauses 2-3 s between requests so the whole
// run stays just inside the limit. A 429 is counted apart, never hidden. Locally, give
// each user its own address as real users have: k6 run --local-ips 127.0.1.1-127.0.8.254.
// tests/test_k6_smoke.py runs it for a few seconds in every test run (--stage overrides).
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Rate } from 'k6/metrics';

const BASE_URL = __ENV.BASE_URL || 'http://localhost:8080';
const rateLimited = new Rate('rate_limited');

export const options = {
  stages: [
    { duration: '30s', target: 20 },
    { duration: '1m', target: 20 },
    { duration: '10s', target: 0 },
  ],
  thresholds: {
    http_req_failed: ['rate<0.01'],
    http_req_duration: ['p(95)<500'],
    rate_limited: ['rate<0.05'],
  },
};

http.setResponseCallback(http.expectedStatuses(200));

export default function () {
  const response = http.get(`${BASE_URL}/api/events`, { tags: { name: 'GET /api/events' } });
  rateLimited.add(response.status === 429);
  check(response, {
    'status is 200': (r) => r.status === 200,
    'body is an event list': (r) => r.status === 200 && Array.isArray(r.json()),
  });
  sleep(2 + Math.random());
}
