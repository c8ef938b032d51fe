// Shared by the scripts that need accounts: the data file written by the setup step
// (`python -m bench`, or tests/test_k6_smoke.py), read once and shared by every VU.
//
//   BENCH_DATA=/abs/path/accounts.json   (required)
//   BASE_URL=http://127.0.0.1:28080      (optional; defaults to the gateway in the file)
import http from 'k6/http';
import { SharedArray } from 'k6/data';

const DATA_PATH = __ENV.BENCH_DATA;
if (!DATA_PATH) {
  throw new Error('BENCH_DATA must name the accounts file written by the setup step');
}

// Tokens of every buyer, shared read-only between VUs (one copy in memory, not one per VU).
export const buyers = new SharedArray('buyers', () => JSON.parse(open(DATA_PATH)).buyers);

// Everything else in the file: gateway URL, admin and organizer sessions.
export const meta = new SharedArray('meta', () => {
  const data = JSON.parse(open(DATA_PATH));
  delete data.buyers;
  return [data];
})[0];

export const BASE_URL = __ENV.BASE_URL || meta.gateway_url;

export function intEnv(name, fallback) {
  const value = __ENV[name];
  return value === undefined || value === '' ? fallback : parseInt(value, 10);
}

export function floatEnv(name, fallback) {
  const value = __ENV[name];
  return value === undefined || value === '' ? fallback : parseFloat(value);
}

export function authParams(token, name, extra = {}) {
  return {
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    tags: { name },
    ...extra,
  };
}

// The buyer this VU plays: VU n (1-based) is buyer n-1, wrapping if there are fewer.
export function buyerOf(vuId) {
  return buyers[(vuId - 1) % buyers.length];
}

export function seatId(ticketClass, index, perRow) {
  return `${ticketClass}-${Math.floor(index / perRow) + 1}-${(index % perRow) + 1}`;
}

// An event published by the prepared organizer (``extra``: more fields of the create
// body, e.g. a waiting room's); returns the event body.
export function createEvent(title, seats, perRow, extra = {}) {
  const body = {
    title,
    description: 'Benchmark event on the bench stack.',
    date: new Date(Date.now() + 30 * 24 * 3600 * 1000).toISOString(),
    location: 'Addis Ababa',
    price_normal: '150.00',
    price_vip: '400.00',
    price_vvip: '900.00',
    seats_normal: seats.normal,
    seats_vip: seats.vip,
    seats_vvip: seats.vvip,
    seats_per_row: perRow,
    ...extra,
  };
  const response = http.post(
    `${BASE_URL}/api/events`,
    JSON.stringify(body),
    authParams(meta.organizer.access_token, 'POST /api/events', { timeout: '120s' }),
  );
  if (response.status !== 201) {
    throw new Error(`creating the event failed: ${response.status} ${response.body}`);
  }
  return response.json('event');
}

// Every page of an admin list (`X-Total-Count` tells when to stop).
export function allPages(path, key, token, name) {
  const items = [];
  const limit = 200;
  for (let offset = 0; ; offset += limit) {
    const sep = path.includes('?') ? '&' : '?';
    const response = http.get(
      `${BASE_URL}${path}${sep}limit=${limit}&offset=${offset}`,
      authParams(token, name),
    );
    if (response.status !== 200) {
      throw new Error(`${name} failed: ${response.status} ${response.body}`);
    }
    const page = response.json(key);
    items.push(...page);
    const total = parseInt(response.headers['X-Total-Count'] || '0', 10);
    if (page.length < limit || items.length >= total) {
      return items;
    }
  }
}
