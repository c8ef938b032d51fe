// Flash sale: every VU is a buyer with its own account, racing the others for the seats
// of one event that goes on sale when the test starts, through the gateway, and paying
// for what it gets. At the end the script reads back the seat map and the bookings and
// fails unless sold seats <= capacity, no seat is in two confirmed bookings, and every
// paid booking is confirmed. Buyers never cancel a booking they paid for, so once the saga
// has drained (teardown waits for the event's pending bookings to settle), every booking of
// the event must be confirmed or cancelled by its buyer after a failed payment: one left
// pending, expired or failed is a paid booking the system did not confirm. Each buyer also
// waits a while for its own bookings; what is still unconfirmed then is reported as the
// saga's lag (flash_confirm_lagging), not as a loss. Each payment step is timed on its
// own (flash_initialize_duration, flash_pay_duration, flash_verify_duration).
//
//   BENCH_DATA=accounts.json k6 run --local-ips 127.0.1.1-127.0.8.254 k6/flash_sale.js
//
// The accounts come from the setup step (python -m bench); setup() below publishes the
// event. Knobs (environment): BUYERS (VUs, default: every prepared buyer), SEATS_NORMAL /
// SEATS_VIP / SEATS_VVIP (default 8000 / 1500 / 500), MAX_SEATS (per booking, 4),
// SPECIFIC_SHARE (share of attempts naming seats rather than a count, 0.5),
// BOOKING_P99_MS (threshold, 1000), MAX_DURATION (5m), SETTLE_TIMEOUT_S (a buyer's wait
// for its own confirmations, 90), DRAIN_TIMEOUT_S (teardown's wait for the saga, 240),
// SALE_SECONDS (buyers stop starting bookings after it; 0: until sold out).
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
  floatEnv,
  intEnv,
  meta,
  seatId,
} from './lib/bench.js';
import { drainPending, payBooking, readBack, retrying } from './lib/purchase.js';

const BUYERS = intEnv('BUYERS', buyers.length);
const SEATS = {
  normal: intEnv('SEATS_NORMAL', 8000),
  vip: intEnv('SEATS_VIP', 1500),
  vvip: intEnv('SEATS_VVIP', 500),
};
const CLASSES = ['normal', 'vip', 'vvip'];
const CAPACITY = SEATS.normal + SEATS.vip + SEATS.vvip;
const PER_ROW = intEnv('SEATS_PER_ROW', 50);
const MAX_SEATS = intEnv('MAX_SEATS', 4);
const SPECIFIC_SHARE = floatEnv('SPECIFIC_SHARE', 0.5);
const SETTLE_TIMEOUT_S = intEnv('SETTLE_TIMEOUT_S', 90);
const DRAIN_TIMEOUT_S = intEnv('DRAIN_TIMEOUT_S', 240);
// Buyers start no booking after this many seconds of sale (0: until sold out), so the
// last ones are paid or cancelled before MAX_DURATION cuts the scenario: a buyer stopped
// mid-purchase would leave a pending booking that proves nothing either way.
const SALE_SECONDS = intEnv('SALE_SECONDS', 0);
// A buyer gives up after this many attempts (bounds the run if something goes wrong).
const MAX_ATTEMPTS = intEnv('MAX_ATTEMPTS', Math.ceil((20 * CAPACITY) / BUYERS) + 50);

const attempts = new Counter('flash_attempts');
const booked = new Counter('flash_bookings');
const bookedSeats = new Counter('flash_booked_seats');
const rejected = new Counter('flash_rejected');
const rateLimited = new Counter('flash_rate_limited');
const unexpected = new Counter('flash_unexpected');
const paymentsFailed = new Counter('flash_payment_failed');
const confirmLagging = new Counter('flash_confirm_lagging');
const bookingDuration = new Trend('flash_booking_duration', true);
const purchaseDuration = new Trend('flash_purchase_duration', true);
// Each payment step of a purchase, timed as the buyer's request saw it.
const initializeDuration = new Trend('flash_initialize_duration', true);
const payDuration = new Trend('flash_pay_duration', true);
const verifyDuration = new Trend('flash_verify_duration', true);
// Written by teardown() from what the stack reads back.
const doubleSold = new Counter('flash_double_sold');
const oversold = new Counter('flash_oversold');
const inconsistent = new Counter('flash_inconsistent');
const stuckPending = new Counter('flash_stuck_pending');
const lostBookings = new Counter('flash_lost_bookings');
const paidUnconfirmed = new Counter('flash_paid_unconfirmed');
const capacityGauge = new Gauge('flash_capacity');
const soldGauge = new Gauge('flash_sold_seats');
const confirmedBookingsGauge = new Gauge('flash_confirmed_bookings');
const soldOutGauge = new Gauge('flash_sold_out');
const sellOutGauge = new Gauge('flash_sell_out_ms');
// From the sale's start to the last booking confirmed, sold out or not.
const lastSoldGauge = new Gauge('flash_last_sold_ms');
// Which event was on sale, so the harness can read its bookings, payments and emails back.
const eventIdGauge = new Gauge('flash_event_id');

export const options = {
  setupTimeout: '120s',
  teardownTimeout: `${DRAIN_TIMEOUT_S + 120}s`,
  scenarios: {
    flash_sale: {
      executor: 'per-vu-iterations',
      vus: BUYERS,
      iterations: 1,
      maxDuration: __ENV.MAX_DURATION || '5m',
      gracefulStop: '60s',
    },
  },
  thresholds: {
    flash_double_sold: ['count==0'],
    flash_oversold: ['count==0'],
    flash_paid_unconfirmed: ['count==0'],
    flash_inconsistent: ['count==0'],
    flash_stuck_pending: ['count==0'],
    flash_lost_bookings: ['count==0'],
    flash_unexpected: ['count==0'],
    flash_booking_duration: [`p(99)<${intEnv('BOOKING_P99_MS', 1000)}`],
    checks: ['rate==1'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
};

export function setup() {
  const event = createEvent(`Flash sale ${Date.now()}`, SEATS, PER_ROW);
  return { eventId: event.id, startedAt: Date.now() };
}

const send = retrying(rateLimited);

function post(url, body, params) {
  return send('POST', url, body, params);
}

function get(url, params) {
  return send('GET', url, null, params);
}

// Seats near the stage are wanted most: indexes skew towards the front rows.
function wantedSeats(ticketClass, count) {
  const chosen = new Set();
  while (chosen.size < Math.min(count, SEATS[ticketClass])) {
    const index = Math.floor(SEATS[ticketClass] * Math.pow(Math.random(), 2));
    chosen.add(seatId(ticketClass, index, PER_ROW));
  }
  return [...chosen].map((id) => ({ id }));
}

function pay(booking, token) {
  return payBooking(send, booking, token, 'Flash', {
    initialize: initializeDuration,
    pay: payDuration,
    verify: verifyDuration,
  });
}

function stillOnSale(eventId, soldOut) {
  const response = get(`${BASE_URL}/api/events/${eventId}`, { tags: { name: 'GET /api/events/{id}' } });
  if (response.status !== 200) {
    return false;
  }
  let any = false;
  for (const ticketClass of CLASSES) {
    const left = response.json(`available_${ticketClass}`) > 0;
    soldOut[ticketClass] = !left;
    any = any || left;
  }
  return any;
}

// Wait a while for every booking this buyer paid for to be confirmed (payments settle
// through RabbitMQ, so confirmation lags the payment). What is still unconfirmed when the
// wait runs out is the saga's lag at that moment; teardown decides whether it was lost.
function confirmPaid(paid, token) {
  const deadline = Date.now() + SETTLE_TIMEOUT_S * 1000;
  let missing = paid;
  let pause = 0.5;
  while (missing.length > 0 && Date.now() < deadline) {
    const confirmed = new Set(
      allPages('/api/bookings/user?status=confirmed', 'bookings', token, 'GET /api/bookings/user').map(
        (b) => b.id,
      ),
    );
    missing = missing.filter((id) => !confirmed.has(id));
    if (missing.length > 0) {
      sleep(pause);
      pause = Math.min(2 * pause, 4); // as a polling client backs off
    }
  }
  confirmLagging.add(missing.length);
}

export default function (sale) {
  const buyer = buyerOf(exec.vu.idInTest);
  const token = buyer.access_token;
  const soldOut = { normal: false, vip: false, vvip: false };
  const want = { normal: MAX_SEATS, vip: MAX_SEATS, vvip: MAX_SEATS };
  const paid = [];
  let pickSeats = Math.random() < SPECIFIC_SHARE;

  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (SALE_SECONDS > 0 && Date.now() - sale.startedAt > SALE_SECONDS * 1000) {
      break;
    }
    const onSale = CLASSES.filter((c) => !soldOut[c] && SEATS[c] > 0);
    if (onSale.length === 0 && !stillOnSale(sale.eventId, soldOut)) {
      break;
    }
    const choices = CLASSES.filter((c) => !soldOut[c] && SEATS[c] > 0);
    if (choices.length === 0) {
      break;
    }
    const ticketClass = choices[Math.floor(Math.random() * choices.length)];
    const count = 1 + Math.floor(Math.random() * Math.min(MAX_SEATS, want[ticketClass]));
    const body = pickSeats
      ? { event_id: sale.eventId, seats: wantedSeats(ticketClass, count) }
      : { event_id: sale.eventId, seat_count: count, ticket_class: ticketClass };

    const started = Date.now();
    const response = post(
      `${BASE_URL}/api/bookings`,
      JSON.stringify(body),
      authParams(token, 'POST /api/bookings', {
        responseCallback: http.expectedStatuses(201, 409),
      }),
    );
    attempts.add(1);
    bookingDuration.add(response.timings.duration);

    if (response.status === 201) {
      const booking = response.json('booking');
      booked.add(1);
      bookedSeats.add(booking.seat_count);
      if (pay(booking, token)) {
        paid.push(booking.id);
        purchaseDuration.add(Date.now() - started);
      } else {
        paymentsFailed.add(1);
        post(
          `${BASE_URL}/api/bookings/${booking.id}/cancel`,
          null,
          authParams(token, 'POST /api/bookings/{id}/cancel'),
        );
      }
      pickSeats = Math.random() < SPECIFIC_SHARE;
    } else if (response.status === 409) {
      rejected.add(1);
      const details = response.json('details') || {};
      if (details.ticket_class === ticketClass && details.available !== undefined) {
        // A count request fell short: the answer says how many are left.
        soldOut[ticketClass] = details.available === 0;
        want[ticketClass] = Math.max(1, details.available);
      }
      // After losing a race for named seats, ask for the best available instead.
      pickSeats = false;
    } else {
      unexpected.add(1);
      console.warn(`booking answered ${response.status}: ${response.body}`);
      sleep(0.5);
    }
  }
  confirmPaid(paid, token);
}

export function teardown(sale) {
  eventIdGauge.add(sale.eventId);
  const admin = meta.admin.access_token;
  const pending = drainPending(sale.eventId, admin, DRAIN_TIMEOUT_S);
  stuckPending.add(pending);

  // (a buyer stopped by MAX_DURATION before it could check its own booking shows here too)
  const { confirmed, lost, doubles, sold, mismatched } = readBack(sale.eventId, admin);
  lostBookings.add(lost.length);
  paidUnconfirmed.add(lost.length + pending);
  doubleSold.add(doubles.length);
  oversold.add(Math.max(0, sold.length - CAPACITY));
  inconsistent.add(mismatched);
  let lastConfirmed = 0;
  for (const booking of confirmed) {
    lastConfirmed = Math.max(lastConfirmed, Date.parse(booking.confirmed_at));
  }

  capacityGauge.add(CAPACITY);
  soldGauge.add(sold.length);
  confirmedBookingsGauge.add(confirmed.length);
  const soldOutNow = sold.length === CAPACITY;
  soldOutGauge.add(soldOutNow ? 1 : 0);
  sellOutGauge.add(soldOutNow ? lastConfirmed - sale.startedAt : 0);
  lastSoldGauge.add(confirmed.length > 0 ? lastConfirmed - sale.startedAt : 0);
  console.log(
    `flash sale of event ${sale.eventId}: ${sold.length}/${CAPACITY} seats sold in ` +
      `${confirmed.length} confirmed bookings, ${doubles.length} double-sold, ` +
      `${pending} still pending`,
  );
}
