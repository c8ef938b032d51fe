// Waiting room: an on-sale behind the event's queue. Every VU is a buyer with its own
// account and address; the buyers join the event's queue spread over JOIN_SECONDS, the
// sale opens ONSALE_AFTER_S into that window (so the first arrivals wait for it and are
// shuffled, the later ones queue in arrival order), and the room admits
// ADMIT_PER_MINUTE buyers a minute. Each buyer polls its place as the answer asks
// (poll_after_s), and once admitted books SEATS_PER_BUYER seats with its pass
// (X-Queue-Pass), pays on the simulated provider's checkout and verifies, as in
// k6/flash_sale.js. The event has fewer seats than buyers want: once it is sold out the
// room tells everyone still waiting (sold_out) and they go home.
//
//   BENCH_DATA=queue-accounts.json k6 run --local-ips 127.0.101.1-127.0.120.254 \
//     --log-format raw --console-output buyers.jsonl k6/waiting_room.js
//
// Each buyer prints one line `queue-buyer {json}` when it is done (its join, the first
// answer it read after the sale opened, its admission, its purchase), setup prints
// `queue-sale {json}`: the harness (bench/waiting_room.py) computes fairness and the
// estimate's error from them. teardown() reads back, as the flash sale does, that no seat
// is in two confirmed bookings and the seat map agrees with the bookings.
//
// Knobs (environment): BUYERS (VUs, default every buyer in the file), JOIN_SECONDS (10),
// ONSALE_AFTER_S (3), LEAD_S (setup's lead before the first join, 5), ADMIT_PER_MINUTE
// (1200), SEATS_NORMAL / SEATS_VIP / SEATS_VVIP (2000 / 400 / 100), SEATS_PER_BUYER (2),
// QUEUE_WAIT_S (a buyer gives up this long after the sale opened, 120), MAX_DURATION
// (3m), DRAIN_TIMEOUT_S (teardown's wait for pending bookings, 30), P99_MS (threshold on
// booking, initialize, pay and verify, 500).
import http from 'k6/http';
import exec from 'k6/execution';
import { check, sleep } from 'k6';
import { Counter, Gauge, Trend } from 'k6/metrics';
import {
  BASE_URL,
  allPages,
  authParams,
  buyerOf,
  buyers,
  createEvent,
  intEnv,
  floatEnv,
  meta,
} from './lib/bench.js';
import { drainPending, payBooking, readBack, retrying } from './lib/purchase.js';

const BUYERS = intEnv('BUYERS', buyers.length);
const SEATS = {
  normal: intEnv('SEATS_NORMAL', 2000),
  vip: intEnv('SEATS_VIP', 400),
  vvip: intEnv('SEATS_VVIP', 100),
};
const CLASSES = ['normal', 'vip', 'vvip'];
const CAPACITY = SEATS.normal + SEATS.vip + SEATS.vvip;
const PER_ROW = intEnv('SEATS_PER_ROW', 50);
const SEATS_PER_BUYER = intEnv('SEATS_PER_BUYER', 2);
const JOIN_SECONDS = floatEnv('JOIN_SECONDS', 10);
const ONSALE_AFTER_S = floatEnv('ONSALE_AFTER_S', 3);
const LEAD_S = floatEnv('LEAD_S', 5);
const ADMIT_PER_MINUTE = intEnv('ADMIT_PER_MINUTE', 1200);
const QUEUE_WAIT_S = floatEnv('QUEUE_WAIT_S', 120);
const DRAIN_TIMEOUT_S = intEnv('DRAIN_TIMEOUT_S', 30);
const P99_MS = intEnv('P99_MS', 500);
// A buyer that meets this many answers it cannot use in a row stops (bounds a broken run).
const MAX_FAILURES = 5;
const MAX_BOOKING_ATTEMPTS = 4;

const joined = new Counter('queue_joined');
const polls = new Counter('queue_polls');
const admitted = new Counter('queue_admitted');
const soldOutSeen = new Counter('queue_sold_out');
const expired = new Counter('queue_expired');
const gaveUp = new Counter('queue_gave_up');
const attempts = new Counter('queue_booking_attempts');
const booked = new Counter('queue_bookings');
const rejected = new Counter('queue_rejected');
const passRefused = new Counter('queue_pass_refused');
const paymentsFailed = new Counter('queue_payment_failed');
const unexpected = new Counter('queue_unexpected');
const rateLimited = new Counter('queue_rate_limited');
const joinDuration = new Trend('queue_join_duration', true);
const pollDuration = new Trend('queue_poll_duration', true);
const bookingDuration = new Trend('queue_booking_duration', true);
const initializeDuration = new Trend('queue_initialize_duration', true);
const payDuration = new Trend('queue_pay_duration', true);
const verifyDuration = new Trend('queue_verify_duration', true);
const purchaseDuration = new Trend('queue_purchase_duration', true);
// Written by setup() (the gate's refusals) and teardown() (the read-back).
const gateRefusals = new Gauge('queue_gate_refusals_ok');
const doubleSold = new Counter('queue_double_sold');
const oversold = new Counter('queue_oversold');
const inconsistent = new Counter('queue_inconsistent');
const stuckPending = new Counter('queue_stuck_pending');
const lostBookings = new Counter('queue_lost_bookings');
const capacityGauge = new Gauge('queue_capacity');
const soldGauge = new Gauge('queue_sold_seats');
const confirmedBookingsGauge = new Gauge('queue_confirmed_bookings');
const eventIdGauge = new Gauge('queue_event_id');
const roomLength = new Gauge('queue_room_length');
const roomAdmitted = new Gauge('queue_room_admitted');
const roomSoldOut = new Gauge('queue_room_sold_out');

const stepThresholds = [`p(99)<${P99_MS}`];
export const options = {
  setupTimeout: '120s',
  teardownTimeout: `${DRAIN_TIMEOUT_S + 90}s`,
  scenarios: {
    waiting_room: {
      executor: 'per-vu-iterations',
      vus: BUYERS,
      iterations: 1,
      maxDuration: __ENV.MAX_DURATION || '3m',
      gracefulStop: '15s',
    },
  },
  thresholds: {
    queue_double_sold: ['count==0'],
    queue_oversold: ['count==0'],
    queue_inconsistent: ['count==0'],
    queue_lost_bookings: ['count==0'],
    queue_stuck_pending: ['count==0'],
    queue_unexpected: ['count==0'],
    queue_gate_refusals_ok: ['value==1'],
    queue_booking_duration: stepThresholds,
    queue_initialize_duration: stepThresholds,
    queue_pay_duration: stepThresholds,
    queue_verify_duration: stepThresholds,
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
};

function iso(ms) {
  return new Date(ms).toISOString();
}

function parseTime(text) {
  return text ? Date.parse(text) : null;
}

// A request that waits out the gateway's rate limit (429 + Retry-After) instead of failing.
const send = retrying(rateLimited);

function errorCode(response) {
  try {
    return response.json('code') || null;
  } catch (_) {
    return null;
  }
}

// The room must refuse a booking without a pass (428) and with a pass that is not one
// (403), or this benchmark would measure a sale nobody queues for.
function gateRefuses(eventId, token) {
  const body = JSON.stringify({ event_id: eventId, seat_count: 1, ticket_class: 'normal' });
  const without = http.post(
    `${BASE_URL}/api/bookings`,
    body,
    authParams(token, 'POST /api/bookings (no pass)', {
      responseCallback: http.expectedStatuses(428),
    }),
  );
  const forged = http.post(`${BASE_URL}/api/bookings`, body, {
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
      'X-Queue-Pass': 'not-a-pass',
    },
    tags: { name: 'POST /api/bookings (forged pass)' },
    responseCallback: http.expectedStatuses(403),
  });
  const notJoined = http.get(
    `${BASE_URL}/api/events/${eventId}/queue/me`,
    authParams(token, 'GET /api/events/{id}/queue/me (not joined)', {
      responseCallback: http.expectedStatuses(404),
    }),
  );
  return check(null, {
    'booking without a pass: 428 queue_pass_required': () =>
      without.status === 428 && errorCode(without) === 'queue_pass_required',
    'booking with a forged pass: 403 queue_pass_invalid': () =>
      forged.status === 403 && errorCode(forged) === 'queue_pass_invalid',
    'place before joining: 404 not_in_queue': () =>
      notJoined.status === 404 && errorCode(notJoined) === 'not_in_queue',
  });
}

export function setup() {
  const started = Date.now();
  const joinStart = started + LEAD_S * 1000;
  const onsaleAt = joinStart + ONSALE_AFTER_S * 1000;
  const event = createEvent(`Waiting room ${started}`, SEATS, PER_ROW, {
    queue_enabled: true,
    onsale_at: iso(onsaleAt),
    queue_admit_per_minute: ADMIT_PER_MINUTE,
  });
  if (!event.queue_enabled || !event.onsale_at) {
    throw new Error(`the event came back without its waiting room: ${response.body}`);
  }
  const gate = gateRefuses(event.id, buyerOf(1).access_token);
  gateRefusals.add(gate ? 1 : 0);
  const sale = {
    eventId: event.id,
    startedAt: started,
    createdAt: Date.now(),
    joinStart,
    joinSeconds: JOIN_SECONDS,
    onsaleAt: parseTime(event.onsale_at),
    admitPerMinute: event.queue_admit_per_minute,
    capacity: CAPACITY,
    buyers: BUYERS,
    seatsPerBuyer: SEATS_PER_BUYER,
    gateRefuses: gate,
  };
  console.log(`queue-sale ${JSON.stringify(sale)}`);
  return sale;
}

function pay(booking, token) {
  return payBooking(send, booking, token, 'Queued', {
    initialize: initializeDuration,
    pay: payDuration,
    verify: verifyDuration,
  });
}

// A class with seats left, chosen in proportion to its size, as buyers spread over them.
function pickClass(soldOut) {
  const open = CLASSES.filter((c) => !soldOut[c] && SEATS[c] > 0);
  if (open.length === 0) {
    return null;
  }
  const total = open.reduce((sum, c) => sum + SEATS[c], 0);
  let draw = Math.random() * total;
  for (const c of open) {
    draw -= SEATS[c];
    if (draw < 0) {
      return c;
    }
  }
  return open[open.length - 1];
}

// The admitted buyer's purchase: book with the pass (a class that turns out short is
// asked again for what is left, or another class), pay and verify.
function buy(sale, token, queuePass, record) {
  const params = authParams(token, 'POST /api/bookings', {
    responseCallback: http.expectedStatuses(201, 409),
  });
  params.headers['X-Queue-Pass'] = queuePass;
  const soldOut = { normal: false, vip: false, vvip: false };
  let want = SEATS_PER_BUYER;
  let ticketClass = pickClass(soldOut);
  for (let attempt = 0; attempt < MAX_BOOKING_ATTEMPTS && ticketClass; attempt++) {
    const started = Date.now();
    const response = send(
      'POST',
      `${BASE_URL}/api/bookings`,
      JSON.stringify({ event_id: sale.eventId, seat_count: want, ticket_class: ticketClass }),
      params,
    );
    attempts.add(1);
    bookingDuration.add(response.timings.duration);
    record.booking_attempts = attempt + 1;
    if (response.status === 201) {
      const booking = response.json('booking');
      booked.add(1);
      record.booking_id = booking.id;
      record.seats = booking.seat_count;
      record.booked_ms = Date.now();
      if (pay(booking, token)) {
        record.paid = true;
        purchaseDuration.add(Date.now() - started);
      } else {
        paymentsFailed.add(1);
        send(
          'POST',
          `${BASE_URL}/api/bookings/${booking.id}/cancel`,
          null,
          authParams(token, 'POST /api/bookings/{id}/cancel'),
        );
      }
      return;
    }
    if (response.status === 409) {
      rejected.add(1);
      const details = response.json('details') || {};
      record.refusal = errorCode(response);
      if (details.ticket_class === ticketClass && details.available !== undefined) {
        soldOut[ticketClass] = details.available === 0;
        want = Math.max(1, Math.min(want, details.available));
      } else {
        soldOut[ticketClass] = true;
      }
      if (soldOut[ticketClass]) {
        want = SEATS_PER_BUYER;
        ticketClass = pickClass(soldOut);
      }
      continue;
    }
    record.refusal = errorCode(response) || `http_${response.status}`;
    if (response.status === 403 || response.status === 428) {
      passRefused.add(1); // an admitted buyer's own, live pass was refused
    } else {
      unexpected.add(1);
    }
    console.warn(`booking with a pass answered ${response.status}: ${response.body}`);
    return;
  }
}

export default function (sale) {
  const vu = exec.vu.idInTest;
  const buyer = buyerOf(vu);
  const token = buyer.access_token;
  const base = `${BASE_URL}/api/events/${sale.eventId}/queue`;
  const record = { vu, user_id: buyer.user_id, polls: 0, paid: false };
  const deadline = sale.onsaleAt + QUEUE_WAIT_S * 1000;

  // Arrivals spread evenly at random over the join window.
  const joinAt = sale.joinStart + Math.random() * JOIN_SECONDS * 1000;
  const lead = joinAt - Date.now();
  if (lead > 0) {
    sleep(lead / 1000);
  }
  record.join_sent_ms = Date.now();
  const join = send(
    'POST',
    base,
    null,
    authParams(token, 'POST /api/events/{id}/queue', {
      responseCallback: http.expectedStatuses(200, 201),
    }),
  );
  joinDuration.add(join.timings.duration);
  let received = Date.now();
  record.join_http = join.status;
  if (join.status !== 201 && join.status !== 200) {
    unexpected.add(1);
    record.outcome = `join_http_${join.status}`;
    console.warn(`joining the queue answered ${join.status}: ${join.body}`);
    console.log(`queue-buyer ${JSON.stringify(record)}`);
    return;
  }
  joined.add(1);
  let place = join.json();
  record.joined_at_ms = parseTime(place.joined_at);
  record.join_status = place.status;
  record.join_position = place.position;
  record.join_estimate_s = place.estimated_wait_s;

  let failures = 0;
  for (;;) {
    if (record.first_ms === undefined && received >= sale.onsaleAt && place.status !== 'waiting') {
      // The first answer read after the sale opened: what it promised, and when.
      record.first_ms = received;
      record.first_status = place.status;
      record.first_position = place.position;
      record.first_estimate_s = place.estimated_wait_s;
    }
    if (place.status === 'admitted') {
      break;
    }
    if (place.status === 'sold_out' || place.status === 'expired') {
      record.outcome = place.status;
      record.done_ms = received;
      (place.status === 'sold_out' ? soldOutSeen : expired).add(1);
      console.log(`queue-buyer ${JSON.stringify(record)}`);
      return;
    }
    const now = Date.now();
    if (now >= deadline) {
      record.outcome = 'gave_up';
      record.last_position = place.position;
      gaveUp.add(1);
      console.log(`queue-buyer ${JSON.stringify(record)}`);
      return;
    }
    // Ask again when the room says to (never past the buyer's own deadline).
    const pause = Math.max(0, Number(place.poll_after_s) || 1);
    sleep(Math.min(pause, (deadline - now) / 1000 + 0.05));
    const answer = send(
      'GET',
      `${base}/me`,
      null,
      authParams(token, 'GET /api/events/{id}/queue/me'),
    );
    pollDuration.add(answer.timings.duration);
    polls.add(1);
    record.polls += 1;
    received = Date.now();
    if (answer.status !== 200) {
      unexpected.add(1);
      console.warn(`polling the queue answered ${answer.status}: ${answer.body}`);
      failures += 1;
      if (failures >= MAX_FAILURES) {
        record.outcome = `poll_http_${answer.status}`;
        console.log(`queue-buyer ${JSON.stringify(record)}`);
        return;
      }
      sleep(1);
      continue;
    }
    failures = 0;
    place = answer.json();
  }

  admitted.add(1);
  record.admitted_at_ms = parseTime(place.admitted_at);
  record.admitted_seen_ms = received;
  record.pass_expires_at_ms = parseTime(place.pass_expires_at);
  if (!place.pass) {
    unexpected.add(1);
    record.outcome = 'admitted_without_pass';
    console.warn(`admitted without a pass: ${JSON.stringify(place)}`);
  } else {
    buy(sale, token, place.pass, record);
    record.outcome = record.paid ? 'bought' : record.booking_id ? 'payment_failed' : 'no_seats';
  }
  console.log(`queue-buyer ${JSON.stringify(record)}`);
}

export function teardown(sale) {
  eventIdGauge.add(sale.eventId);
  capacityGauge.add(CAPACITY);
  const admin = meta.admin.access_token;
  const pending = drainPending(sale.eventId, admin, DRAIN_TIMEOUT_S);
  stuckPending.add(pending);

  const room = http.get(
    `${BASE_URL}/api/events/${sale.eventId}/queue`,
    authParams(meta.organizer.access_token, 'GET /api/events/{id}/queue'),
  );
  if (check(room, { "organizer read the room's figures": (r) => r.status === 200 })) {
    roomLength.add(room.json('length'));
    roomAdmitted.add(room.json('admitted'));
    roomSoldOut.add(room.json('status') === 'sold_out' ? 1 : 0);
  }

  const { confirmed, lost, doubles, sold, mismatched } = readBack(sale.eventId, admin);
  lostBookings.add(lost.length);
  doubleSold.add(doubles.length);
  oversold.add(Math.max(0, sold.length - CAPACITY));
  inconsistent.add(mismatched);
  soldGauge.add(sold.length);
  confirmedBookingsGauge.add(confirmed.length);
  console.log(
    `waiting room of event ${sale.eventId}: ${sold.length}/${CAPACITY} seats sold in ` +
      `${confirmed.length} confirmed bookings, ${doubles.length} double-sold, ` +
      `${pending} still pending`,
  );
}
