// What every purchase-shaped scenario shares (k6/flash_sale.js, k6/waiting_room.js): a
// request that waits out the gateway's rate limit, paying for a booking on the simulated
// checkout, and the read-back at the end that proves no seat was sold twice.
import http from 'k6/http';
import { check, sleep } from 'k6';

import { BASE_URL, allPages, authParams } from './bench.js';

// A request that waits out the gateway's rate limit (429 + Retry-After) instead of
// failing; ``rateLimited`` (a Counter) counts the waits.
export function retrying(rateLimited) {
  return function send(method, url, body, params) {
    for (;;) {
      const response = http.request(method, url, body, params);
      if (response.status !== 429) {
        return response;
      }
      rateLimited.add(1);
      sleep(parseFloat(response.headers['Retry-After'] || '1'));
    }
  };
}

// Initialize, press Pay on the simulated checkout, verify: true when the payment
// succeeded. ``durations`` holds the Trends of the three steps.
export function payBooking(send, booking, token, buyerName, durations) {
  const init = send(
    'POST',
    `${BASE_URL}/api/payments/initialize`,
    JSON.stringify({ booking_id: booking.id, first_name: buyerName, last_name: 'Buyer' }),
    authParams(token, 'POST /api/payments/initialize'),
  );
  durations.initialize.add(init.timings.duration);
  if (!check(init, { 'payment initialized': (r) => r.status === 200 })) {
    return false;
  }
  const txRef = init.json('tx_ref');
  const paid = send('POST', `${BASE_URL}/api/payments/checkout/${txRef}/pay`, null, {
    redirects: 0,
    tags: { name: 'POST /api/payments/checkout/{tx_ref}/pay' },
    responseCallback: http.expectedStatuses(303),
  });
  durations.pay.add(paid.timings.duration);
  if (!check(paid, { 'checkout paid': (r) => r.status === 303 })) {
    return false;
  }
  const verified = send(
    'GET',
    `${BASE_URL}/api/payments/verify/${txRef}`,
    null,
    authParams(token, 'GET /api/payments/verify/{tx_ref}'),
  );
  durations.verify.add(verified.timings.duration);
  return check(verified, {
    'payment succeeded': (r) => r.status === 200 && r.json('payment.status') === 'success',
  });
}

function pendingCount(eventId, admin) {
  const response = http.get(
    `${BASE_URL}/api/bookings/all?event_id=${eventId}&status=pending&limit=1`,
    authParams(admin, 'GET /api/bookings/all'),
  );
  return parseInt(response.headers['X-Total-Count'] || '0', 10);
}

// Waits up to ``timeoutS`` for the event's pending bookings to settle; returns how many
// are still pending.
export function drainPending(eventId, admin, timeoutS) {
  const deadline = Date.now() + timeoutS * 1000;
  let pending = pendingCount(eventId, admin);
  while (pending > 0 && Date.now() < deadline) {
    sleep(1);
    pending = pendingCount(eventId, admin);
  }
  return pending;
}

// The event's bookings and seat map read back: every confirmed booking's seats, the seats
// in two confirmed bookings, the bookings that ended without a sale (every buyer paid for
// what it won or cancelled it, so an expired or failed one is a payment lost), the seats
// the map says are sold, and how many seats the map and the bookings disagree on.
export function readBack(eventId, admin) {
  const bookings = allPages(
    `/api/bookings/all?event_id=${eventId}`,
    'bookings',
    admin,
    'GET /api/bookings/all',
  );
  const confirmed = bookings.filter((b) => b.status === 'confirmed');
  const lost = bookings.filter((b) => b.status === 'expired' || b.status === 'failed');
  if (lost.length > 0) {
    const shown = lost.slice(0, 20).map((b) => `${b.id}:${b.status}`);
    console.error(`bookings that ended without a sale: ${shown.join(', ')}`);
  }
  const owners = {};
  for (const booking of confirmed) {
    for (const seat of booking.seat_list) {
      (owners[seat.seat_id] = owners[seat.seat_id] || []).push(booking.id);
    }
  }
  const doubles = Object.keys(owners).filter((id) => owners[id].length > 1);
  if (doubles.length > 0) {
    console.error(`seats in two confirmed bookings: ${doubles.slice(0, 20).join(', ')}`);
  }
  const map = http.get(`${BASE_URL}/api/events/${eventId}/seats`, {
    tags: { name: 'GET /api/events/{id}/seats' },
  });
  check(map, { 'seat map read back': (r) => r.status === 200 });
  const sold = map.json('seats').filter((s) => s.status === 'sold');
  const soldIds = new Set(sold.map((s) => s.seat_id));
  const mismatched =
    sold.filter((s) => !owners[s.seat_id]).length +
    Object.keys(owners).filter((id) => !soldIds.has(id)).length;
  if (mismatched > 0) {
    console.error(`${mismatched} seats differ between the seat map and the confirmed bookings`);
  }
  return { bookings, confirmed, lost, doubles, sold, mismatched };
}
