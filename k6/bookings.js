// Booking throughput: VUs create bookings through the gateway as fast as the stack
// answers, each for a seat nobody else asks for (distinct seats, no contention), so the
// figure is the cost of the booking path itself: gateway, booking_service, the seat-hold
// script on Redis and the PostgreSQL insert. Bookings stay pending (nobody pays).
//
//   BENCH_DATA=accounts.json k6 run --local-ips 127.0.1.1-127.0.8.254 k6/bookings.js
//
// Knobs: VUS (50), DURATION (20s), SEATS (100000: the event's normal seats; each booking
// takes the next one), BOOKING_P99_MS (threshold, 250), PACE_S (pause after each booking,
// 0; the in-suite smoke paces itself under the test stack's 10 r/s per address).
import http from 'k6/http';
import exec from 'k6/execution';
import { check, sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import {
  BASE_URL,
  authParams,
  buyerOf,
  createEvent,
  floatEnv,
  intEnv,
  seatId,
} from './lib/bench.js';

const SEATS = intEnv('SEATS', 100000);
const PER_ROW = 1000;
const PACE_S = floatEnv('PACE_S', 0);

const created = new Counter('bookings_created');
const refused = new Counter('bookings_refused');
const bookingDuration = new Trend('booking_duration', true);
let warned = 0; // per VU: show the first few refusals, not thousands

export const options = {
  setupTimeout: '120s',
  scenarios: {
    bookings: {
      executor: 'constant-vus',
      vus: intEnv('VUS', 50),
      duration: __ENV.DURATION || '20s',
      gracefulStop: '10s',
    },
  },
  thresholds: {
    bookings_refused: ['count==0'],
    booking_duration: [`p(99)<${intEnv('BOOKING_P99_MS', 250)}`],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
};

export function setup() {
  const event = createEvent(`Booking throughput ${Date.now()}`, { normal: SEATS, vip: 0, vvip: 0 }, PER_ROW);
  return { eventId: event.id };
}

export default function (data) {
  const index = exec.scenario.iterationInTest;
  if (index >= SEATS) {
    exec.test.abort(`all ${SEATS} seats are booked: raise SEATS or shorten DURATION`);
  }
  const buyer = buyerOf(exec.vu.idInTest);
  const response = http.post(
    `${BASE_URL}/api/bookings`,
    JSON.stringify({ event_id: data.eventId, seats: [{ id: seatId('normal', index, PER_ROW) }] }),
    authParams(buyer.access_token, 'POST /api/bookings', {
      responseCallback: http.expectedStatuses(201),
    }),
  );
  bookingDuration.add(response.timings.duration);
  if (check(response, { 'booking created': (r) => r.status === 201 })) {
    created.add(1);
  } else {
    refused.add(1);
    if (warned++ < 3) {
      console.warn(`booking answered ${response.status}: ${response.body}`);
    }
  }
  if (PACE_S > 0) {
    sleep(PACE_S);
  }
}
