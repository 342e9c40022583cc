import pg from 'pg';
const pool = new pg.Pool({ connectionString: process.argv[2], max: 4 });
const SQL = `SELECT quota_decide($1::text[], $2::text[], $3::int[], $4::bigint[], $5::bigint[],
  $6::text[], $7::text[], $8::boolean[], $9::int[], $10::int[], $11::bigint[], $12::text[], $13::text,
  $14::int) AS d`;
let n = 0;
const call = (k) => pool.query({ name: 'qd', text: SQL, values: [['bench-user'], ['u' + k], [1], [1000000000], [60000], ['sliding_window'], [null], [false], [1], [1], [1], [null], 'UTC', 250] });
const start = performance.now(); const total = 2000 * 12;
await new Promise((resolve) => {
  const tick = () => {
    const due = Math.min(total, Math.floor((performance.now() - start) * 2));
    while (n < due) call(n++ % 10000);
    if (n < total) setTimeout(tick, 1); else setTimeout(resolve, 500);
  };
  tick();
});
await pool.end();
