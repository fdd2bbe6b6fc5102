/**
 * RFC 3339 date-times as exact instants, to the microsecond.
 *
 * A JS Date keeps milliseconds only, and epoch microseconds in one number lose
 * precision outside 1685..2255, so an instant is whole seconds plus microseconds.
 * Accepts what the Python SDK accepts (section 5.6 date-time, offset required,
 * `Z`/`z` and `t` allowed, fractions truncated to microseconds, years 1..9999).
 */

/** An instant: seconds since the epoch and microseconds within that second (0..999999). */
export interface Instant {
  readonly seconds: number;
  readonly micros: number;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

// Days from 1970-01-01 to the proleptic Gregorian date (H. Hinnant's days_from_civil).
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Parse an RFC 3339 date-time with an offset. Throws RangeError naming the problem, not the text. */
export function parseRfc3339(text: string): Instant {
  const m = typeof text === "string" ? RFC3339.exec(text) : null;
  if (m === null) throw new RangeError("not an RFC 3339 date-time with a UTC offset");
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number, number, number, number, number, number,
  ];
  const monthDays = month === 2 && isLeap(year) ? 29 : DAYS_IN_MONTH[month - 1];
  if (
    year < 1 ||
    monthDays === undefined ||
    day < 1 ||
    day > monthDays ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    throw new RangeError("not a valid RFC 3339 date-time");
  }
  let offset = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) throw new RangeError("not a valid RFC 3339 date-time");
    offset = (oh * 3600 + om * 60) * (m[9] === "-" ? -1 : 1);
  }
  const micros = Number((m[7] ?? "").slice(0, 6).padEnd(6, "0"));
  const seconds =
    daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
  return { seconds, micros };
}

/** The instant of a JS Date (millisecond precision). */
export function instantOfDate(date: Date): Instant {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new RangeError("now is an invalid Date");
  return instantOfMillis(ms);
}

export function instantOfMillis(ms: number): Instant {
  const seconds = Math.floor(ms / 1000);
  return { seconds, micros: Math.round((ms - seconds * 1000) * 1000) };
}

/** Negative, zero or positive as `a` is before, at or after `b`. */
export function compareInstants(a: Instant, b: Instant): number {
  return a.seconds !== b.seconds ? a.seconds - b.seconds : a.micros - b.micros;
}
