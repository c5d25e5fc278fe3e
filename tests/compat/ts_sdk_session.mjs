// Drives the official TypeScript SDK (npm isorun@1.0.1), unchanged, against a runner.
// Prints one JSON object of observations; the Python test asserts on it.
import { Isorun, IsorunError } from 'isorun';

const image = process.argv[2];
const out = {};
const client = new Isorun({ apiKey: process.env.ISORUN_API_KEY, apiUrl: process.env.ISORUN_API_URL });
await client.connect?.().catch(() => {});
const sb = await client.create({ image, vcpus: 1, memMiB: 512, diskMiB: 1024, timeoutSec: 300 });
out.created = { id: sb.id, image: sb.image, vcpus: sb.vcpus, memMiB: sb.memMiB, diskMiB: sb.diskMiB, createMs: sb.createMs };
out.exec = await sb.exec("echo hello; echo oops >&2; exit 3");
await sb.writeFile('/work/n\u00e9w file.txt', 'caf\u00e9');
out.read = await sb.readFile('/work/n\u00e9w file.txt');
await sb.writeFile('/work/bin', new Uint8Array([0, 1, 2, 255]));
out.readdir = (await sb.readdir('/work')).map((e) => e.name);
out.info = await sb.info();
await sb.setTimeout(600);
const snap = await sb.snapshot();
out.snapshot = snap;
out.snapshots = (await client.listSnapshots()).map((s) => s.id);
const restored = await client.restore(snap.id);
out.restoredRead = await restored.readFile('/work/n\u00e9w file.txt');
const kids = await sb.fork(2);
out.forks = kids.map((k) => k.id);
out.forkRead = await kids[1].readFile('/work/n\u00e9w file.txt');
await sb.hibernate();
out.hibernatedStatus = (await sb.info()).status;
try { await sb.exec('true'); out.execWhileHibernated = 'no error'; }
catch (e) { out.execWhileHibernated = e instanceof IsorunError ? e.status : String(e); }
await sb.resume();
out.resumedStatus = (await sb.info()).status;
out.list = (await client.list()).map((s) => s.id);
out.get = (await client.get(sb.id))?.id ?? null;
out.getMissing = await client.get('sb-doesnotexist');
out.url = sb.url(8080, 'x?y=1');
out.audit = (await sb.auditLog()).map((e) => ({ seq: e.seq, event: e.event, hmac: e.hmac, sandboxId: e.sandboxId, timestamp: e.timestamp }));
out.profiles = await client.networkProfiles();
for (const k of [...kids, restored]) await k.destroy();
await client.deleteSnapshot(snap.id);
out.destroy = await sb.destroy();
out.getAfterDestroy = await client.get(sb.id);
out.history = (await client.history()).filter((h) => h.id === sb.id);
out.usage = await client.usage();
try { await client.restore(snap.id); out.restoreDeleted = 'no error'; }
catch (e) { out.restoreDeleted = e instanceof IsorunError ? e.status : String(e); }
client.close();
console.log(JSON.stringify(out));
