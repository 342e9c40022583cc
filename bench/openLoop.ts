import { Tally, type Caller, type Outcome } from './measure.js';
import { clock, pace } from './Pacer.js';
import { RATE, SECONDS } from './settings.js';

/**
 * Calls at RATE per second for SECONDS whatever the answers do, the request of call n being
 * `request(n)`, latency counted from when each call was due, so a stall counts against every
 * call it delays.
 */
export async function openLoop<Req>(
  check: Caller<Req, Outcome>,
  name: string,
  request: (n: number) => Req,
): Promise<Tally> {
  const tally = new Tally(name);
  const total = RATE * SECONDS;
  let outstanding = 0;
  let drained: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (drained = resolve));
  let paced = false;
  const finished = () => {
    if (--outstanding === 0 && paced) drained();
  };
  await pace(RATE, total, (n, dueAt) => {
    outstanding++;
    check(request(n)).then(
      (res) => {
        tally.answered(res, clock() - dueAt);
        finished();
      },
      (err: unknown) => {
        tally.failed(err);
        finished();
      },
    );
  });
  paced = true;
  if (outstanding > 0) await done;
  return tally;
}
