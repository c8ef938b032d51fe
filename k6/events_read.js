// Read throughput: VUs fetch one URL back to back for a fixed time. The benchmark runs it
// twice with the same VUs, addresses and duration: once on GET /api/events through the
// gateway, once on nginx serving a static copy of that very body (the machine's ceiling).
//
//   TARGET_URL=http://127.0.0.1:28080/api/events k6 run --local-ips 127.0.1.1-127.0.8.254 \
//     k6/events_read.js
//
// Knobs: TARGET_URL (required), VUS (50), DURATION (20s), EXPECT_BYTES (if set, every
// answer must have exactly this many body bytes), PACE_S (pause after each request, 0).
import http from 'k6/http';
import { check, sleep } from 'k6';

const TARGET_URL = __ENV.TARGET_URL;
if (!TARGET_URL) {
  throw new Error('TARGET_URL must name the URL to read');
}
const PACE_S = parseFloat(__ENV.PACE_S || '0');
const EXPECT_BYTES = __ENV.EXPECT_BYTES ? parseInt(__ENV.EXPECT_BYTES, 10) : null;

export const options = {
  scenarios: {
    read: {
      executor: 'constant-vus',
      vus: parseInt(__ENV.VUS || '50', 10),
      duration: __ENV.DURATION || '20s',
      gracefulStop: '5s',
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
};

export default function () {
  const response = http.get(TARGET_URL, { tags: { name: 'read' } });
  check(response, {
    'status is 200': (r) => r.status === 200,
    'whole body': (r) => EXPECT_BYTES === null || r.body.length === EXPECT_BYTES,
  });
  if (PACE_S > 0) {
    sleep(PACE_S);
  }
}
